"""wsam-tui: a terminal fleet console for Windows Server on Azure."""
__version__ = "0.1.0"
