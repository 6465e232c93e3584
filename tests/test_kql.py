"""Tests for wsam_tui.kql, the KQL-subset engine (operators, functions, semantics, errors)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from wsam_tui.kql import (
    STANDARD_COLUMNS,
    KqlError,
    KqlResult,
    KqlSyntaxError,
    KqlUnsupportedError,
    parse,
    run,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000001"
VM_T = "Microsoft.Compute/virtualMachines"
ARC_T = "Microsoft.HybridCompute/machines"


def _vm(name: str, os_type: str = "Windows", rg: str = "RG-One", **props) -> dict:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{VM_T}/{name}",
        "name": name, "type": VM_T, "location": "westeurope", "resourceGroup": rg, "subscriptionId": SUB,
        "tags": {"env": "prod" if name.endswith("1") else "dev", "cost center": "42"},
        "properties": {"storageProfile": {"osDisk": {"osType": os_type}}, **props},
    }


def _arc(name: str, status: str, last_change: str, rg: str = "rg-arc") -> dict:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{ARC_T}/{name}",
        "name": name, "type": ARC_T, "location": "northeurope", "resourceGroup": rg, "subscriptionId": SUB,
        "tags": {}, "kind": "",
        "properties": {"status": status, "lastStatusChange": last_change, "osType": "windows", "agentVersion": "1.40"},
    }


def _ext(machine_id: str, name: str, publisher: str) -> dict:
    return {
        "id": f"{machine_id}/extensions/{name}", "name": name,
        "type": (VM_T if VM_T.lower() in machine_id.lower() else ARC_T) + "/extensions",
        "subscriptionId": SUB,
        "properties": {"publisher": publisher, "typeHandlerVersion": "1.0", "provisioningState": "Succeeded"},
    }


@pytest.fixture()
def fleet() -> list[dict]:
    vm1 = _vm("vm1", cpu=4, nics=["nic-a", "nic-b"])
    vm2 = _vm("vm2", "Linux", cpu=2, nics=[])
    vm3 = _vm("VM3", rg="rg-two", cpu=8)
    arc1 = _arc("arc1", "Connected", "2024-06-01T10:11:12.1234567Z")
    arc2 = _arc("arc2", "Disconnected", "2024-05-01T00:00:00Z")
    # Extension ids as ARM emits them can differ in casing from the machine id.
    exts = [
        _ext(vm1["id"].replace("resourceGroups/RG-One", "resourcegroups/rg-one"), "MDE.Windows", "Microsoft.Azure.AzureDefenderForServers"),
        _ext(vm1["id"], "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor"),
        _ext(arc1["id"], "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor"),
    ]
    return [vm1, vm2, vm3, arc1, arc2, *exts]


def q(query: str, rows: list[dict] | None = None, **tables) -> KqlResult:
    if rows is not None:
        tables["resources"] = rows
    return run(query, tables, now=NOW)


def col(result: KqlResult, name: str) -> list:
    return [r[name] for r in result.rows]


def T(**cols) -> list[dict]:
    """A tiny table from columns of equal length."""
    names = list(cols)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


# ============================================================================ lexer / parser


class TestSyntax:
    def test_comments_whitespace_and_newlines(self):
        rows = T(a=[1, 2, 3])
        r = q("// leading comment\nt\n  | where a >= 2 // keep two\n\n  | project a", t=rows)
        assert col(r, "a") == [2, 3]

    @pytest.mark.parametrize(("literal", "expected"), [
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'a\tb\nc\\d'", "a\tb\nc\\d"),
        (r"@'C:\temp\new'", r"C:\temp\new"),
        (r"@'it''s'", "it's"),
        (r'@"x""y"', 'x"y'),
        (r"'ab' 'cd' // comment" + "\n 'ef'", "abcdef"),
        ("```multi\nline```", "multi\nline"),
        (r"'\u00e9'", "é"),
        (r"h'secret'", "secret"),
    ])
    def test_string_literals(self, literal, expected):
        r = q(f"t | project s = {literal}", t=[{}])
        assert r.rows == [{"s": expected}]

    def test_unknown_escape_is_a_syntax_error_with_position(self):
        with pytest.raises(KqlSyntaxError) as ei:
            parse("t\n| where a == 'x\\qy'")
        e = ei.value
        assert e.code == "ParserFailure"
        assert (e.line, e.column) == (2, 16)  # the backslash
        assert "line 2, column 16" in str(e)

    def test_unterminated_string(self):
        with pytest.raises(KqlSyntaxError, match="unterminated string"):
            parse("t | where a == 'abc")

    def test_null_literal_is_rejected(self):
        with pytest.raises(KqlSyntaxError, match="no 'null' literal"):
            parse("t | where a == null")

    def test_bad_syntax_reports_position(self):
        with pytest.raises(KqlSyntaxError) as ei:
            parse("resources | where name = 'x'")
        assert ei.value.column == 24
        assert ei.value.to_dict() == {"code": "ParserFailure", "message": ei.value.message, "line": 1,
                                      "characterPositionInLine": 24}

    def test_missing_expression(self):
        with pytest.raises(KqlSyntaxError, match="expected an expression, found end of query"):
            parse("resources | where")

    def test_empty_query(self):
        with pytest.raises(KqlSyntaxError, match="empty"):
            parse("   // nothing\n")

    def test_unknown_operator_is_a_syntax_error(self):
        with pytest.raises(KqlSyntaxError, match="unknown tabular operator 'wher'"):
            parse("resources | wher name == 'x'")

    @pytest.mark.parametrize("query,name", [
        ("resources | union resources", "union"),
        ("let x = 1; resources", "let"),
        ("resources | render table", "render"),
        ("resources | parse name with a '-' b", "parse"),
        ("resources | mv-apply x on (take 1)", "mv-apply"),
        ("resources | make-series count() on t step 1d", "make-series"),
        ("resources | project-reorder name", "project-reorder"),
        ("resources | evaluate bag_unpack(properties)", "evaluate"),
        ("resources | lookup (resources) on id", "lookup"),
        ("print 1", "print"),
    ])
    def test_unsupported_operators_are_named(self, query, name):
        with pytest.raises(KqlUnsupportedError) as ei:
            parse(query)
        assert ei.value.code == "UnsupportedOperator"
        assert f"'{name}'" in ei.value.message

    def test_multiple_statements_unsupported(self):
        with pytest.raises(KqlUnsupportedError, match="multiple statements"):
            parse("resources; resources")

    def test_matches_regex_unsupported(self):
        with pytest.raises(KqlUnsupportedError, match="matches regex"):
            parse("resources | where name matches regex 'a.*'")

    def test_subquery_in_in_list_unsupported(self):
        with pytest.raises(KqlUnsupportedError, match="subquery"):
            parse("resources | where id in (resources | project id)")

    def test_unsupported_function_is_named(self):
        with pytest.raises(KqlUnsupportedError) as ei:
            parse("resources | extend x = extract('a(b)', 1, name)")
        assert ei.value.code == "UnsupportedFunction"
        assert "'extract'" in ei.value.message

    def test_unsupported_aggregate_is_named(self):
        with pytest.raises(KqlUnsupportedError, match="'arg_max'") as ei:
            parse("resources | summarize arg_max(name, *) by type")
        assert ei.value.code == "UnsupportedFunction"

    def test_numbers_and_timespans(self):
        r = q("t | project a = 42, b = 1.5, c = 1e3, d = -7, e = 1d, f = 3h, g = 30m, h = 10s, i = 100ms", t=[{}])
        row = r.rows[0]
        assert (row["a"], row["b"], row["c"], row["d"]) == (42, 1.5, 1000.0, -7)
        assert row["e"] == "1.00:00:00" and row["f"] == "03:00:00" and row["g"] == "00:30:00"
        assert row["h"] == "00:00:10" and row["i"] == "00:00:00.1000000"

    def test_invalid_number_suffix(self):
        with pytest.raises(KqlSyntaxError, match="invalid number literal '5x'"):
            parse("t | where a > 5x")

    def test_dynamic_literal(self):
        r = q('t | project d = dynamic({"a": [1, -2.5, true, null, "s"], "b": {}})', t=[{}])
        assert r.rows[0]["d"] == {"a": [1, -2.5, True, None, "s"], "b": {}}
        assert r.columns == [("d", "object")]

    def test_dynamic_literal_is_not_shared_between_rows(self):
        r = q("t | extend d = dynamic([1])", t=[{"x": 1}, {"x": 2}])
        assert r.rows[0]["d"] == [1] and r.rows[0]["d"] is not r.rows[1]["d"]

    def test_datetime_and_typed_literals(self):
        r = q("t | project a = datetime(2024-01-02), b = datetime(2024-05-01T10:11:12.1234567Z),"
              " c = timespan(1.02:03:04), d = int(null), e = real(1), f = bool(false)", t=[{}])
        assert r.rows == [{"a": "2024-01-02T00:00:00.0000000Z", "b": "2024-05-01T10:11:12.1234560Z",
                           "c": "1.02:03:04", "d": None, "e": 1.0, "f": False}]

    def test_invalid_datetime_literal(self):
        with pytest.raises(KqlSyntaxError, match="invalid datetime literal"):
            parse("t | where t > datetime(2024-13-45)")


# ============================================================================ tables / columns


class TestTablesAndColumns:
    def test_unknown_table(self):
        with pytest.raises(KqlError) as ei:
            run("nosuchtable | take 1", {"resources": []})
        assert ei.value.code == "UnknownTable"
        assert "nosuchtable" in str(ei.value)

    def test_table_lookup_is_case_insensitive(self, fleet):
        assert len(run("Resources | count", {"resources": fleet}).rows) == 1
        assert run("resources | count", {"RESOURCES": fleet}).rows == [{"Count": len(fleet)}]

    def test_callable_tables_are_called_only_when_used(self):
        calls = []

        def make(name):
            def f():
                calls.append(name)
                return iter([{"id": name}])  # any iterable
            return f

        r = run("a | project id", {"a": make("a"), "b": make("b")})
        assert r.rows == [{"id": "a"}] and calls == ["a"]

    def test_unknown_column_in_closed_schema_fails_at_compile_time(self):
        with pytest.raises(KqlError) as ei:
            parse("resources | project id | where name == 'x'")
        assert ei.value.code == "InvalidQuery"
        assert ei.value.message == "Failed to resolve scalar expression named 'name'"
        assert ei.value.column == 32

    def test_column_names_are_case_sensitive(self, fleet):
        with pytest.raises(KqlError, match="named 'ID'"):
            q("resources | project ID", fleet)

    def test_unknown_top_level_name_fails_at_run_time(self, fleet):
        with pytest.raises(KqlError) as ei:
            q("resources | where nosuch == 1", fleet)
        assert ei.value.code == "InvalidQuery" and "'nosuch'" in ei.value.message
        assert ei.value.line == 1

    def test_unknown_name_in_a_lazy_operator_fails_at_run_time(self, fleet):
        with pytest.raises(KqlError, match="named 'nosuch'"):
            q("resources | extend x = nosuch", fleet)
        with pytest.raises(KqlError, match="named 'nosuch'"):
            q("resources | project-away nosuch", fleet)

    def test_wildcards_and_side_references_are_rejected(self):
        with pytest.raises(KqlUnsupportedError, match="wildcard"):
            parse("resources | project-away prop*")
        with pytest.raises(KqlError, match=r"\$left can only be used in a join"):
            parse("resources | where $left.id == 1")

    def test_extra_keys_of_any_row_are_columns(self, fleet):
        rows = copy.deepcopy(fleet)
        rows[2]["custom"] = "yes"
        r = q("resources | where isnotempty(custom) | project name, custom", rows)
        assert r.rows == [{"name": "VM3", "custom": "yes"}]
        # ... and appear (null elsewhere) in a pass-through result, after the standard columns.
        r = q("resources | where name == 'vm1'", rows)
        assert [c for c, _ in r.columns] == [*STANDARD_COLUMNS, "custom"]
        assert r.rows[0]["custom"] is None

    def test_standard_columns_exist_even_when_absent_from_rows(self):
        r = q("resources | project id, managedBy, zones", [{"id": "x"}])
        assert r.rows == [{"id": "x", "managedBy": None, "zones": None}]

    def test_pass_through_returns_all_standard_columns_in_order(self, fleet):
        r = q("resources | where name == 'vm2'", fleet)
        assert [c for c, _ in r.columns] == STANDARD_COLUMNS
        assert r.rows[0]["kind"] is None and r.rows[0]["name"] == "vm2"

    def test_input_rows_are_never_mutated_or_aliased(self, fleet):
        before = copy.deepcopy(fleet)
        queries = [
            "resources",
            "resources | extend name = toupper(name), x = 1 | project-away tags",
            "resources | project-rename n = name",
            "resources | mv-expand n = properties.nics",
            "resources | join kind=leftouter (resources | project id, z = 1) on id",
            "resources | distinct *",
            "resources | summarize make_list(properties) by type",
            "resources | order by name asc | take 3",
        ]
        ids = {id(r) for r in fleet}
        for query in queries:
            r = q(query, fleet)
            assert all(id(row) not in ids for row in r.rows), query
            for row in r.rows:  # mutate the output: the input must not change
                row["id"] = "changed"
        assert fleet == before


# ============================================================================ where


class TestWhere:
    def test_equality_is_case_sensitive_tilde_is_not(self, fleet):
        assert col(q("resources | where name == 'vm3' | project name", fleet), "name") == []
        assert col(q("resources | where name =~ 'vm3' | project name", fleet), "name") == ["VM3"]
        assert len(q("resources | where type != 'Microsoft.Compute/virtualMachines'", fleet).rows) == 5
        assert len(q("resources | where type !~ 'microsoft.compute/VIRTUALMACHINES'", fleet).rows) == 5

    def test_null_comparisons(self, fleet):
        # Missing property: == is false, != is true (KQL null semantics).
        assert len(q("resources | where properties.nope == 'x'", fleet).rows) == 0
        assert len(q("resources | where properties.nope != 'x'", fleet).rows) == len(fleet)
        # null == null is null (not true) -> filtered out.
        assert len(q("resources | where properties.nope == properties.nope2", fleet).rows) == 0
        assert len(q("resources | where properties.nope > 1", fleet).rows) == 0

    def test_in_and_not_in(self, fleet):
        r = q("resources | where name in ('vm1', 'arc2', 'VM1') | project name", fleet)
        assert col(r, "name") == ["vm1", "arc2"]
        r = q("resources | where name !in ('vm1', 'arc2') and type !endswith 'extensions' | project name", fleet)
        assert col(r, "name") == ["vm2", "VM3", "arc1"]
        r = q("resources | where name in~ ('VM1', 'vm3') | project name", fleet)
        assert col(r, "name") == ["vm1", "VM3"]
        r = q("resources | where name !in~ ('VM1', 'vm3') and type !has 'extensions' | project name", fleet)
        assert col(r, "name") == ["vm2", "arc1", "arc2"]

    def test_in_with_dynamic_array_and_numbers(self):
        rows = T(a=[1, 2, 3, None], s=["1", "x", "3", "4"])
        assert col(q("t | where a in (dynamic([1, 3])) | project a", t=rows), "a") == [1, 3]
        assert col(q("t | where s in (1, 3) | project s", t=rows), "s") == ["1", "3"]
        # null is never "in", always "!in"
        assert col(q("t | where a !in (1) | project a", t=rows), "a") == [2, 3, None]

    def test_contains_family(self, fleet):
        assert col(q("resources | where name contains 'M3' | project name", fleet), "name") == ["VM3"]
        assert col(q("resources | where name contains_cs 'M3' | project name", fleet), "name") == ["VM3"]
        assert col(q("resources | where name contains_cs 'm3' | project name", fleet), "name") == []
        assert len(q("resources | where name !contains 'vm'", fleet).rows) == 5
        assert len(q("resources | where name !contains_cs 'vm'", fleet).rows) == 6

    def test_startswith_endswith(self, fleet):
        assert col(q("resources | where name startswith 'ARC' | project name", fleet), "name") == ["arc1", "arc2"]
        assert col(q("resources | where name startswith_cs 'ARC' | project name", fleet), "name") == []
        assert len(q("resources | where name !startswith 'arc'", fleet).rows) == 6
        assert col(q("resources | where name endswith 'agent' | project name", fleet), "name") == [
            "AzureMonitorWindowsAgent", "AzureMonitorWindowsAgent"]
        assert len(q("resources | where name endswith_cs 'agent'", fleet).rows) == 0
        assert len(q("resources | where name !endswith 'agent'", fleet).rows) == 6

    def test_has_is_term_match_contains_is_substring(self):
        rows = T(s=["Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun", "North America", "hello_world"])
        assert len(q("t | where s has 'Explorer'", t=rows).rows) == 0
        assert len(q("t | where s contains 'Explorer'", t=rows).rows) == 1
        assert len(q("t | where s has 'kustoexplorerqueryrun'", t=rows).rows) == 1  # case-insensitive
        assert len(q("t | where s has_cs 'kustoexplorerqueryrun'", t=rows).rows) == 0
        assert len(q("t | where s has 'c1db'", t=rows).rows) == 1
        assert len(q("t | where s has 'c1d'", t=rows).rows) == 0
        assert len(q("t | where s has 'c1db-4f9f'", t=rows).rows) == 1  # a phrase on term boundaries
        assert col(q("t | where s has 'america'", t=rows), "s") == ["North America"]
        assert col(q("t | where s has 'world'", t=rows), "s") == ["hello_world"]  # '_' separates terms
        assert len(q("t | where s !has 'america'", t=rows).rows) == 2
        assert len(q("t | where s hasprefix 'amer'", t=rows).rows) == 1
        assert len(q("t | where s hassuffix 'rica'", t=rows).rows) == 1

    def test_has_any_and_has_all(self):
        rows = T(s=["alpha beta", "gamma", "alphabet"])
        assert col(q("t | where s has_any ('beta', 'gamma')", t=rows), "s") == ["alpha beta", "gamma"]
        assert col(q("t | where s has_all ('beta', 'alpha')", t=rows), "s") == ["alpha beta"]

    def test_numeric_and_datetime_comparisons(self, fleet):
        assert col(q("resources | where properties.cpu >= 4 | project name", fleet), "name") == ["vm1", "VM3"]
        assert col(q("resources | where properties.cpu < 4 | project name", fleet), "name") == ["vm2"]
        assert col(q("resources | where properties.cpu > 4.5 | project name", fleet), "name") == ["VM3"]
        assert col(q("resources | where properties.cpu <= 2 | project name", fleet), "name") == ["vm2"]
        r = q("resources | where todatetime(properties.lastStatusChange) > datetime(2024-05-15) | project name", fleet)
        assert col(r, "name") == ["arc1"]
        # A dynamic string compared with a datetime is read as a datetime; ago() uses the run's now.
        r = q("resources | where properties.lastStatusChange > ago(1d) | project name", fleet)
        assert col(r, "name") == ["arc1"]

    def test_string_number_comparison(self):
        rows = T(v=["10", "9", "abc", 7])
        assert col(q("t | where v > 8 | project v", t=rows), "v") == ["10", "9"]
        assert col(q("t | where v == 10 | project v", t=rows), "v") == ["10"]

    def test_logic_precedence_not_and_parentheses(self):
        rows = T(a=[1, 2, 3, 4])
        assert col(q("t | where a == 1 or a == 2 and a == 3", t=rows), "a") == [1]
        assert col(q("t | where (a == 1 or a == 2) and a != 1", t=rows), "a") == [2]
        assert col(q("t | where not(a > 2)", t=rows), "a") == [1, 2]
        assert col(q("t | where a between (2 .. 3)", t=rows), "a") == [2, 3]
        assert col(q("t | where a !between (2 .. 3)", t=rows), "a") == [1, 4]

    def test_three_valued_logic(self):
        rows = T(a=[None, None], b=[True, False])
        # null or true -> true ; null and false -> false ; not(null) -> null
        assert len(q("t | where a > 1 or b", t=rows).rows) == 1
        assert len(q("t | where not(a > 1)", t=rows).rows) == 0

    def test_where_requires_a_boolean(self):
        with pytest.raises(KqlError, match="must be boolean"):
            parse("t | where tostring(a)")
        with pytest.raises(KqlError, match="must be boolean"):
            parse("t | where 1")

    def test_long_generated_chains(self):
        ors = " or ".join(f"a == {i}" for i in range(3000))
        assert col(q(f"t | where {ors} | project a", t=T(a=[2999, -1, 7])), "a") == [2999, 7]
        ands = " and ".join(f"a != {i}" for i in range(3000))
        assert col(q(f"t | where {ands} | project a", t=T(a=[2999, -1, 7])), "a") == [-1]
        assert col(q(f"t | extend ok = {ors} | project ok", t=T(a=[1, -1])), "ok") == [True, False]

    def test_deep_nesting_is_a_syntax_error_not_a_crash(self):
        with pytest.raises(KqlSyntaxError, match="nested too deeply"):
            parse("t | where " + "(" * 5000 + "a" + ")" * 5000 + " == 1")

    def test_filter_alias(self):
        assert len(q("t | filter a == 1", t=T(a=[1, 2])).rows) == 1


# ============================================================================ arithmetic


class TestArithmetic:
    def test_numbers(self):
        r = q("t | project a = 7 + 2 * 3, b = (7 + 2) * 3, c = 7 / 2, d = -7 / 2, e = 7.0 / 2, f = 7 % 3, g = -7 % 3,"
              " h = 1 / 0, i = a - 1", t=[{"a": 10}])
        assert r.rows == [{"a": 13, "b": 27, "c": 3, "d": -3, "e": 3.5, "f": 1, "g": -1, "h": None, "i": 9}]
        assert dict(r.columns)["e"] == "number" and dict(r.columns)["a"] == "integer"

    def test_datetime_arithmetic(self):
        r = q("t | project d = datetime(2024-01-02) - datetime(2024-01-01), n = datetime(2024-01-01) + 36h,"
              " m = now() - 1h, s = 2 * 1h", t=[{}])
        assert r.rows == [{"d": "1.00:00:00", "n": "2024-01-02T12:00:00.0000000Z",
                           "m": "2024-06-01T11:00:00.0000000Z", "s": "02:00:00"}]

    def test_string_plus_is_rejected(self):
        with pytest.raises(KqlError, match="strcat"):
            parse("t | project x = 'a' + 'b'")

    def test_dynamic_non_numbers_give_null(self):
        r = q("t | project x = a + 1", t=[{"a": "s"}, {"a": 2}])
        assert col(r, "x") == [None, 3]


# ============================================================================ extend / project


class TestExtendProject:
    def test_extend_appends_and_can_chain(self):
        r = q("t | project a, b | extend c = a + b, d = c * 2", t=T(a=[1], b=[2]))
        assert r.rows == [{"a": 1, "b": 2, "c": 3, "d": 6}]
        assert [c for c, _ in r.columns] == ["a", "b", "c", "d"]

    def test_extend_existing_column_replaces_and_moves_it_last(self):
        r = q("t | project a, b | extend a = a * 10", t=T(a=[1], b=[2]))
        assert list(r.rows[0].items()) == [("b", 2), ("a", 10)]

    def test_project_orders_renames_and_derives_names(self, fleet):
        r = q("resources | where name == 'vm1' | project name, os = properties.storageProfile.osDisk.osType,"
              " properties.cpu, tostring(properties.cpu), strlen(name), 1 + 1", fleet)
        assert [c for c, _ in r.columns] == ["name", "os", "properties_cpu", "properties_cpu1", "Column1", "Column2"]
        assert r.rows == [{"name": "vm1", "os": "Windows", "properties_cpu": 4, "properties_cpu1": "4",
                           "Column1": 3, "Column2": 2}]

    def test_project_duplicate_name(self):
        with pytest.raises(KqlError, match="duplicate column name 'a'"):
            parse("t | project a, a = 1")

    def test_project_away(self, fleet):
        r = q("resources | project-away properties, tags, kind | take 1", fleet)
        assert [c for c, _ in r.columns] == [c for c in STANDARD_COLUMNS if c not in ("properties", "tags", "kind")]
        with pytest.raises(KqlError, match="named 'tags'"):
            parse("resources | project-away tags | project tags")
        with pytest.raises(KqlError, match="named 'nope'"):
            q("resources | project id | project-away nope", fleet)

    def test_project_rename_keeps_position(self):
        r = q("t | project a, b, c | project-rename x = b", t=T(a=[1], b=[2], c=[3]))
        assert list(r.rows[0].items()) == [("a", 1), ("x", 2), ("c", 3)]
        with pytest.raises(KqlError, match="named 'b'"):
            parse("t | project a, b | project-rename x = b | project b")

    def test_project_rename_of_standard_column(self, fleet):
        r = q("resources | project-rename resourceName = name | where resourceName == 'vm2' | project resourceName", fleet)
        assert r.rows == [{"resourceName": "vm2"}]

    def test_lazy_columns_filter_correctly(self):
        r = q("t | extend b = a * 2 | where b > 2 | project b", t=T(a=[1, 2, 3]))
        assert col(r, "b") == [4, 6]


# ============================================================================ summarize / count


class TestSummarize:
    def test_count_by(self, fleet):
        r = q("resources | summarize count() by type | order by type asc", fleet)
        assert r.columns == [("type", "string"), ("count_", "integer")]
        assert r.rows == [
            {"type": VM_T, "count_": 3},
            {"type": VM_T + "/extensions", "count_": 2},
            {"type": ARC_T, "count_": 2},
            {"type": ARC_T + "/extensions", "count_": 1},
        ]

    def test_default_aggregate_names(self):
        rows = T(k=["a", "a", "b"], x=[1, 2, 3], s=["p", "p", None])
        r = q("t | summarize count(), countif(x > 1), dcount(s), make_list(s), make_set(s), any(s), take_any(x),"
              " min(x), max(x), sum(x), avg(x), make_set(s) by k", t=rows)
        assert [c for c, _ in r.columns] == ["k", "count_", "countif_", "dcount_s", "list_s", "set_s", "any_s", "any_x",
                                             "min_x", "max_x", "sum_x", "avg_x", "set_s1"]
        a, b = r.rows
        assert a == {"k": "a", "count_": 2, "countif_": 1, "dcount_s": 1, "list_s": ["p", "p"], "set_s": ["p"],
                     "any_s": "p", "any_x": 1, "min_x": 1, "max_x": 2, "sum_x": 3, "avg_x": 1.5, "set_s1": ["p"]}
        # nulls are ignored by the aggregates
        assert b == {"k": "b", "count_": 1, "countif_": 1, "dcount_s": 0, "list_s": [], "set_s": [], "any_s": None,
                     "any_x": 3, "min_x": 3, "max_x": 3, "sum_x": 3, "avg_x": 3.0, "set_s1": []}

    def test_default_names_for_paths(self, fleet):
        r = q("resources | summarize max(properties.cpu), dcount(resourceGroup), dcount(tolower(resourceGroup))", fleet)
        # tolower(null) is "" (a value), so the extensions without a resourceGroup add one more.
        assert r.rows == [{"max_properties_cpu": 8, "dcount_resourceGroup": 3, "dcount_": 4}]

    def test_named_aggregates_and_by_expressions(self, fleet):
        r = q("resources | where isnotempty(properties.cpu) | summarize n = count(), cpus = sum(properties.cpu)"
              " by rg = tolower(resourceGroup), big = properties.cpu > 2 | order by rg asc, big asc", fleet)
        assert [c for c, _ in r.columns] == ["rg", "big", "n", "cpus"]
        assert r.rows == [{"rg": "rg-one", "big": False, "n": 1, "cpus": 2},
                          {"rg": "rg-one", "big": True, "n": 1, "cpus": 4},
                          {"rg": "rg-two", "big": True, "n": 1, "cpus": 8}]

    def test_summarize_by_only_is_distinct(self, fleet):
        r = q("resources | summarize by location | order by location asc", fleet)
        assert r.rows == [{"location": None}, {"location": "northeurope"}, {"location": "westeurope"}]

    def test_empty_input_without_by_gives_one_row_of_defaults(self):
        r = q("t | where a > 100 | summarize count(), make_list(a), sum(a), avg(a), max(a), dcount(a)", t=T(a=[1]))
        assert r.rows == [{"count_": 0, "list_a": [], "sum_a": 0, "avg_a": None, "max_a": None, "dcount_a": 0}]

    def test_empty_input_with_by_gives_no_rows(self):
        assert q("t | where a > 100 | summarize count() by a", t=T(a=[1])).rows == []

    def test_nulls_group_together_and_dynamic_keys_group_by_value(self):
        rows = T(k=[None, {"a": 1}, None, {"a": 1}], v=[1, 2, 3, 4])
        r = q("t | summarize s = sum(v) by k", t=rows)
        assert r.rows == [{"k": None, "s": 4}, {"k": {"a": 1}, "s": 6}]

    def test_make_list_of_datetimes_holds_rendered_strings(self):
        r = q("t | summarize l = make_list(todatetime(a)), s = make_set(b)", t=T(a=["2024-01-01"], b=[1]))
        assert r.rows == [{"l": ["2024-01-01T00:00:00.0000000Z"], "s": [1]}]

    def test_make_set_dedupes_dynamic_values_and_bin(self):
        rows = T(x=[{"a": 1}, {"a": 1}, [1]], t=[0, 5, 12])
        r = q("t | summarize make_set(x), make_list(x, 2) by b = bin(t, 10) | order by b asc", t=rows)
        assert r.rows == [{"b": 0, "set_x": [{"a": 1}], "list_x": [{"a": 1}, {"a": 1}]},
                          {"b": 10, "set_x": [[1]], "list_x": [[1]]}]

    def test_summarize_errors(self):
        with pytest.raises(KqlUnsupportedError, match="expressions over aggregation"):
            parse("t | summarize count() * 2")
        with pytest.raises(KqlError, match="'tolower' is not one"):
            parse("t | summarize tolower(a)")
        with pytest.raises(KqlError, match="only be used in summarize"):
            parse("t | extend c = count()")
        with pytest.raises(KqlUnsupportedError, match=r"count\(expr\)"):
            parse("t | summarize count(a)")
        with pytest.raises(KqlError, match="duplicate column name 'n'"):
            parse("t | summarize n = count(), n = dcount(a)")

    def test_count_operator(self, fleet):
        r = q("resources | where type =~ 'microsoft.hybridcompute/machines' | count", fleet)
        assert r.columns == [("Count", "integer")] and r.rows == [{"Count": 2}]


# ============================================================================ sort / take / top / distinct


class TestOrdering:
    def test_sort_default_is_descending(self):
        assert col(q("t | order by a", t=T(a=[2, 3, 1])), "a") == [3, 2, 1]
        assert col(q("t | sort by a asc", t=T(a=[2, 3, 1])), "a") == [1, 2, 3]

    def test_nulls_ordering(self):
        rows = T(a=[2, None, 1])
        assert col(q("t | order by a asc", t=rows), "a") == [None, 1, 2]
        assert col(q("t | order by a desc", t=rows), "a") == [2, 1, None]
        assert col(q("t | order by a asc nulls last", t=rows), "a") == [1, 2, None]
        assert col(q("t | order by a desc nulls first", t=rows), "a") == [None, 2, 1]

    def test_multi_key_sort_and_stability(self):
        rows = T(a=[1, 2, 1, 2], b=["x", "y", "z", "w"], i=[0, 1, 2, 3])
        assert col(q("t | order by a asc, b desc", t=rows), "b") == ["z", "x", "y", "w"]
        assert col(q("t | order by a asc", t=rows), "i") == [0, 2, 1, 3]

    def test_sorting_mixed_types_is_total(self):
        rows = T(a=["b", 2, {"x": 1}, "a", 1.5, True, None])
        assert col(q("t | order by a asc", t=rows), "a") == [None, True, 1.5, 2, "a", "b", {"x": 1}]

    def test_sort_by_datetime_expression(self, fleet):
        r = q("resources | where type == 'Microsoft.HybridCompute/machines'"
              " | order by todatetime(properties.lastStatusChange) asc | project name", fleet)
        assert col(r, "name") == ["arc2", "arc1"]

    def test_take_and_limit(self):
        rows = T(a=[1, 2, 3])
        assert col(q("t | take 2", t=rows), "a") == [1, 2]
        assert col(q("t | limit 0", t=rows), "a") == []
        with pytest.raises(KqlError, match="non-negative integer constant"):
            parse("t | take a")

    def test_top(self):
        rows = T(a=[5, None, 9, 1, 7])
        assert col(q("t | top 2 by a", t=rows), "a") == [9, 7]
        assert col(q("t | top 2 by a asc", t=rows), "a") == [None, 1]
        assert col(q("t | top 2 by a asc nulls last", t=rows), "a") == [1, 5]
        assert col(q("t | top 10 by a desc", t=rows), "a") == [9, 7, 5, 1, None]

    def test_distinct(self):
        rows = T(a=[1, 1, 2, 1], b=["x", "x", "y", "z"])
        assert q("t | distinct a", t=rows).rows == [{"a": 1}, {"a": 2}]
        assert q("t | distinct b, a", t=rows).rows == [{"b": "x", "a": 1}, {"b": "y", "a": 2}, {"b": "z", "a": 1}]
        assert len(q("t | distinct *", t=rows).rows) == 3


# ============================================================================ functions


class TestFunctions:
    def f(self, expr: str, **row) -> object:
        return run(f"t | project v = {expr}", {"t": [row]}, now=NOW).rows[0]["v"]

    def test_tostring(self):
        assert self.f("tostring(a)", a={"b": [1, "x"], "c": None}) == '{"b":[1,"x"],"c":null}'
        assert self.f("tostring(a)", a=True) == "true"
        assert self.f("tostring(a)", a=1.0) == "1"
        assert self.f("tostring(a)", a=2.5) == "2.5"
        assert self.f("tostring(a)", a=None) == ""
        assert self.f("tostring(datetime(2024-01-01))") == "2024-01-01T00:00:00.0000000Z"

    def test_case_conversion(self):
        assert self.f("tolower(a)", a="MiXed") == "mixed"
        assert self.f("toupper(a)", a="MiXed") == "MIXED"

    def test_numeric_conversions(self):
        assert self.f("toint(a)", a="12") == 12
        assert self.f("toint(a)", a="2.7") == 2
        assert self.f("toint(a)", a=-2.7) == -2
        assert self.f("toint(a)", a="x") is None
        assert self.f("toint(a)", a=2**40) is None
        assert self.f("tolong(a)", a=2**40) == 2**40
        assert self.f("toreal(a)", a="1.5") == 1.5
        assert self.f("todouble(a)", a=3) == 3.0
        assert self.f("toreal(a)", a="nope") is None

    def test_tobool(self):
        assert self.f("tobool(a)", a="true") is True
        assert self.f("tobool(a)", a="FALSE") is False
        assert self.f("tobool(a)", a="yes") is None
        assert self.f("tobool(a)", a=0) is False

    def test_todatetime_parses_arm_timestamps(self):
        r = run("t | project d = todatetime(a)", {"t": [
            {"a": "2024-05-01T10:11:12.1234567Z"}, {"a": "2024-05-01T12:11:12+02:00"}, {"a": "2024-05-01"},
            {"a": "2024-05-01 10:11"}, {"a": "not a date"}, {"a": None}]})
        assert r.columns == [("d", "datetime")]
        assert col(r, "d") == ["2024-05-01T10:11:12.1234560Z", "2024-05-01T10:11:12.0000000Z",
                               "2024-05-01T00:00:00.0000000Z", "2024-05-01T10:11:00.0000000Z", None, None]

    def test_split_and_index(self):
        assert self.f("split(a, '/')", a="x/y/z") == ["x", "y", "z"]
        assert self.f("split(a, '/')[1]", a="x/y/z") == "y"
        assert self.f("split(a, '/')[-1]", a="x/y/z") == "z"
        assert self.f("split(a, '/')[5]", a="x/y/z") is None
        assert self.f("split(a, '/', 2)", a="x/y/z") == ["z"]
        assert self.f("split(a, '/')", a=None) == [""]
        with pytest.raises(KqlError, match="delimiter"):
            parse("t | project split(a, '')")

    def test_iff_case_coalesce(self):
        assert self.f("iff(a > 1, 'big', 'small')", a=2) == "big"
        assert self.f("iif(a > 1, 'big', 'small')", a=None) == "small"
        assert self.f("case(a == 1, 'one', a == 2, 'two', 'many')", a=2) == "two"
        assert self.f("case(a == 1, 'one', a == 2, 'two', 'many')", a=5) == "many"
        assert self.f("coalesce(a, b, 'z')", a=None, b="") == "z"
        assert self.f("coalesce(a, b)", a=None, b=0) == 0

    def test_emptiness_predicates(self):
        assert self.f("isempty(a)", a="") is True
        assert self.f("isempty(a)", a=None) is True
        assert self.f("isempty(a)", a=[]) is False
        assert self.f("isnotempty(a)", a="x") is True
        assert self.f("isnull(a)", a="") is False
        assert self.f("isnull(b.c)", b={}) is True
        assert self.f("isnotnull(a)", a=0) is True

    def test_strcat_strlen_substring_and_friends(self):
        assert self.f("strcat(a, '-', 1, '-', b)", a="x", b=None) == "x-1-"
        assert self.f("strlen(a)", a="héllo") == 5
        assert self.f("substring(a, 1, 3)", a="abcdef") == "bcd"
        assert self.f("substring(a, 2)", a="abcdef") == "cdef"
        assert self.f("trim(' ', a)", a="  x y  ") == "x y"
        assert self.f(r"trim_start(@'[/\s]', a)", a=" /x/") == "x/"
        assert self.f("trim_end('/', a)", a="x//") == "x"
        assert self.f("indexof(a, 'c')", a="abc") == 2
        assert self.f("replace_string(a, 'o', '0')", a="foo") == "f00"
        assert self.f("strcat_array(a, ',')", a=[1, "b"]) == "1,b"

    def test_dynamic_functions(self):
        assert self.f("array_length(a)", a=[1, 2]) == 2
        assert self.f("array_length(a)", a="s") is None
        assert self.f("bag_keys(a)", a={"x": 1, "y": 2}) == ["x", "y"]
        assert self.f("parse_json(a)", a='{"k": [1]}') == {"k": [1]}
        assert self.f("parse_json(a).k[0]", a='{"k": [1]}') == 1
        assert self.f("todynamic(a)", a="not json") == "not json"
        assert self.f("bag_pack('a', 1, 'b', a)", a="x") == {"a": 1, "b": "x"}
        assert self.f("pack('t', datetime(2024-01-01))") == {"t": "2024-01-01T00:00:00.0000000Z"}
        assert self.f("bag_pack('t', todatetime(a), 'a', a, 'd', 1d)", a="2024-01-01") == {
            "t": "2024-01-01T00:00:00.0000000Z", "a": "2024-01-01", "d": "1.00:00:00"}
        assert self.f("pack_array(1, a)", a="x") == [1, "x"]
        assert [self.f("gettype(a)", a=v) for v in ("s", 1, 1.5, True, {}, [], None)] == [
            "string", "long", "real", "bool", "dictionary", "array", "null"]

    def test_now_ago_bin_abs(self):
        assert self.f("now()") == "2024-06-01T12:00:00.0000000Z"
        assert self.f("ago(1d)") == "2024-05-31T12:00:00.0000000Z"
        assert self.f("ago(30m)") == "2024-06-01T11:30:00.0000000Z"
        assert self.f("bin(todatetime(a), 1d)", a="2024-05-03T17:00:00Z") == "2024-05-03T00:00:00.0000000Z"
        assert self.f("bin(a, 5)", a=17) == 15
        assert self.f("abs(a)", a=-3) == 3

    def test_now_is_constant_within_a_run_and_defaults_to_utc_now(self):
        r = run("t | project n = now()", {"t": [{}, {}]})
        assert r.rows[0]["n"] == r.rows[1]["n"]
        parsed = datetime.strptime(r.rows[0]["n"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - parsed) < timedelta(minutes=1)

    def test_wrong_arity(self):
        with pytest.raises(KqlError, match="'tolower' expects 1 argument"):
            parse("t | project tolower(a, b)")
        with pytest.raises(KqlError, match="'ago' expects a timespan"):
            parse("t | project ago('1d')")


# ============================================================================ dynamic access


class TestDynamicAccess:
    def test_paths_brackets_and_indexes(self, fleet):
        r = q("resources | where name == 'vm1' | project a = properties.storageProfile.osDisk.osType,"
              " b = properties['storageProfile']['osDisk'].osType, c = tags['cost center'], d = properties.nics[0],"
              " e = properties.nics[-1], f = tags.env", fleet)
        assert r.rows == [{"a": "Windows", "b": "Windows", "c": "42", "d": "nic-a", "e": "nic-b", "f": "prod"}]

    def test_missing_paths_are_null_never_errors(self, fleet):
        r = q("resources | project a = properties.nope.deeper.still, b = properties.nics[7], c = name.x,"
              " d = properties.cpu.x, e = tags[0], f = properties.nics['k'] | take 2", fleet)
        assert r.rows == [{k: None for k in "abcdef"}] * 2

    def test_computed_index(self):
        r = q("t | project v = a[k]", t=[{"a": {"x": 1}, "k": "x"}, {"a": [5, 6], "k": 1}, {"a": [5], "k": None}])
        assert col(r, "v") == [1, 6, None]

    def test_member_access_on_a_string_expression_is_an_error(self):
        with pytest.raises(KqlError, match="cannot access a property of a string"):
            parse("t | project tostring(a).b")

    def test_bracketed_column_names(self):
        r = q("t | project ['my col'] = a, b = ['odd name']", t=[{"a": 1, "odd name": 2}])
        assert r.rows == [{"my col": 1, "b": 2}]


# ============================================================================ join


class TestJoin:
    L = T(k=["a", "b", "b", "c", None], lv=[1, 2, 3, 4, 5])
    R = T(k=["b", "c", "c", "d", None], rv=[10, 20, 30, 40, 50])

    def j(self, kind: str) -> list[tuple]:
        r = run(f"l | project k, lv | join kind={kind} (r | project k, rv) on k", {"l": self.L, "r": self.R})
        return [tuple(row.values()) for row in r.rows]

    def test_default_innerunique_dedups_left(self):
        r = run("l | project k, lv | join (r | project k, rv) on k", {"l": self.L, "r": self.R})
        assert [c for c, _ in r.columns] == ["k", "lv", "k1", "rv"]
        assert [tuple(row.values()) for row in r.rows] == [("b", 2, "b", 10), ("c", 4, "c", 20), ("c", 4, "c", 30)]
        assert self.j("innerunique") == [("b", 2, "b", 10), ("c", 4, "c", 20), ("c", 4, "c", 30)]

    def test_inner(self):
        assert self.j("inner") == [("b", 2, "b", 10), ("b", 3, "b", 10), ("c", 4, "c", 20), ("c", 4, "c", 30)]

    def test_leftouter(self):
        assert self.j("leftouter") == [("a", 1, None, None), ("b", 2, "b", 10), ("b", 3, "b", 10),
                                       ("c", 4, "c", 20), ("c", 4, "c", 30), (None, 5, None, None)]

    def test_semi_and_anti(self):
        assert self.j("leftsemi") == [("b", 2), ("b", 3), ("c", 4)]
        assert self.j("leftanti") == [("a", 1), (None, 5)]
        assert self.j("anti") == [("a", 1), (None, 5)]
        assert self.j("rightsemi") == [("b", 10), ("c", 20), ("c", 30)]
        assert self.j("rightanti") == [("d", 40), (None, 50)]

    def test_right_and_full_outer(self):
        right_only = [(None, None, "d", 40), (None, None, None, 50)]
        assert self.j("rightouter") == [("b", 2, "b", 10), ("b", 3, "b", 10), ("c", 4, "c", 20), ("c", 4, "c", 30),
                                        *right_only]
        assert self.j("fullouter") == [("a", 1, None, None), ("b", 2, "b", 10), ("b", 3, "b", 10), ("c", 4, "c", 20),
                                       ("c", 4, "c", 30), (None, 5, None, None), *right_only]

    def test_left_right_column_condition_and_subquery(self, fleet):
        r = q("resources | where type =~ 'microsoft.hybridcompute/machines' | project id, name"
              " | join kind=inner hint.strategy=shuffle (resources | where type endswith '/extensions'"
              "   | project machineId = tostring(split(id, '/extensions/')[0]), ext = name)"
              " on $left.id == $right.machineId | project name, ext", fleet)
        assert r.rows == [{"name": "arc1", "ext": "AzureMonitorWindowsAgent"}]

    def test_duplicate_columns_get_numbered(self):
        r = run("a | project id, x, x1 | join kind=inner (b | project id, x) on id",
                {"a": [{"id": 1, "x": 1, "x1": 2}], "b": [{"id": 1, "x": 3}]})
        assert r.rows == [{"id": 1, "x": 1, "x1": 2, "id1": 1, "x2": 3}]

    def test_multiple_keys_and_key_errors(self):
        r = run("a | project k1, k2, v | join kind=inner (b | project k1, j2, w) on k1, $left.k2 == $right.j2",
                {"a": T(k1=[1, 1], k2=["x", "y"], v=[1, 2]), "b": T(k1=[1], j2=["y"], w=[9])})
        assert r.rows == [{"k1": 1, "k2": "y", "v": 2, "k11": 1, "j2": "y", "w": 9}]
        with pytest.raises(KqlError, match="named 'nope'"):
            parse("a | project k | join (b | project k) on nope")
        with pytest.raises(KqlError, match="unknown join kind 'sideways'"):
            parse("a | join kind=sideways b on k")

    def test_join_on_dynamic_key_values(self):
        r = run("a | join kind=inner b on k", {"a": [{"k": {"x": [1]}, "v": 1}], "b": [{"k": {"x": [1]}, "w": 2}]})
        assert len(r.rows) == 1


# ============================================================================ mv-expand


class TestMvExpand:
    def test_array(self, fleet):
        r = q("resources | where isnotnull(properties.nics) | mv-expand nic = properties.nics | project name, nic", fleet)
        # vm2 has an empty array: no row; vm1 expands to two rows.
        assert r.rows == [{"name": "vm1", "nic": "nic-a"}, {"name": "vm1", "nic": "nic-b"}]

    def test_column_in_place_and_null(self):
        r = q("t | project a, b | mv-expand a", t=[{"a": [1, 2], "b": "x"}, {"a": None, "b": "y"}, {"a": [], "b": "z"}])
        assert r.rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": None, "b": "y"}]

    def test_bag_expansion(self):
        r = q("t | mv-expand a", t=[{"a": {"x": 1, "y": 2}}])
        assert col(r, "a") == [{"x": 1}, {"y": 2}]
        r = q("t | mv-expand bagexpansion=array a", t=[{"a": {"x": 1, "y": 2}}])
        assert col(r, "a") == [["x", 1], ["y", 2]]

    def test_parallel_limit_index_and_cast(self):
        r = q("t | project a, b | mv-expand with_itemindex=i a, b to typeof(string) limit 3",
              t=[{"a": [1, 2, 3, 4], "b": ["p", 5]}])
        assert r.rows == [{"a": 1, "b": "p", "i": 0}, {"a": 2, "b": None, "i": 1}, {"a": 3, "b": None, "i": 2}]

    def test_expression_needs_a_name(self):
        with pytest.raises(KqlUnsupportedError, match="needs a column name"):
            parse("resources | mv-expand properties.nics")


# ============================================================================ results


class TestResults:
    def test_column_types(self):
        r = q("t | project s = 'x', i = 1, n = 1.5, m = a, b = true, o = dynamic({}), d = now(), z = b2",
              t=[{"a": 1, "b2": None}, {"a": 2.5, "b2": None}])
        assert r.columns == [("s", "string"), ("i", "integer"), ("n", "number"), ("m", "number"), ("b", "boolean"),
                             ("o", "object"), ("d", "datetime"), ("z", "string")]

    def test_mixed_column_is_object(self):
        assert q("t | project a", t=T(a=[1, "x"])).columns == [("a", "object")]

    def test_as_table(self):
        r = q("t | project a, b = a * 2", t=T(a=[1, 2]))
        assert r.as_table() == {"columns": [{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}],
                                "rows": [[1, 2], [2, 4]]}

    def test_compile_once_run_many(self):
        cq = parse("t | where a > 1 | project a")
        assert parse("t | where a > 1 | project a") is cq
        assert col(run(cq, {"t": T(a=[1, 2])}), "a") == [2]
        assert col(run(cq, {"t": T(a=[5, 0, 3])}), "a") == [5, 3]

    def test_runtime_errors_carry_line_and_column(self):
        with pytest.raises(KqlError) as ei:
            run("resources\n| where missing == 1", {"resources": [{"id": 1}]})
        assert (ei.value.line, ei.value.column) == (2, 9)


# ============================================================================ a realistic fleet query


def test_arg_style_fleet_query(fleet):
    query = """
    resources
    | where type =~ 'microsoft.compute/virtualmachines' or type =~ 'microsoft.hybridcompute/machines'
    | extend machineId = tolower(id),
             kind = iff(type =~ 'microsoft.compute/virtualmachines', 'vm', 'arc'),
             os = tolower(tostring(coalesce(properties.storageProfile.osDisk.osType, properties.osType)))
    | where os == 'windows'
    | project machineId, name, kind, os
    | join kind=leftouter (
        resources
        | where type endswith '/extensions'
        | extend machineId = tolower(tostring(split(id, '/extensions/')[0]))
        | summarize extensions = make_list(name), publishers = make_set(tostring(properties.publisher)),
                    n = count() by machineId
      ) on machineId
    | project name, kind, os, extensions, publishers, n = coalesce(n, 0)
    | order by name asc
    """
    r = q(query, fleet)
    assert [c for c, _ in r.columns] == ["name", "kind", "os", "extensions", "publishers", "n"]
    # Strings sort ordinally (as KQL does): "VM3" before "arc1".
    assert r.rows == [
        {"name": "VM3", "kind": "vm", "os": "windows", "extensions": None, "publishers": None, "n": 0},
        {"name": "arc1", "kind": "arc", "os": "windows", "extensions": ["AzureMonitorWindowsAgent"],
         "publishers": ["Microsoft.Azure.Monitor"], "n": 1},
        {"name": "arc2", "kind": "arc", "os": "windows", "extensions": None, "publishers": None, "n": 0},
        {"name": "vm1", "kind": "vm", "os": "windows", "extensions": ["MDE.Windows", "AzureMonitorWindowsAgent"],
         "publishers": ["Microsoft.Azure.AzureDefenderForServers", "Microsoft.Azure.Monitor"], "n": 2},
    ]
    # The same per-machine fold as the inventory's ARG queries (pack() inside make_list()).
    r = q("resources | where type endswith '/extensions'"
          " | extend machineId = tostring(split(tolower(id), '/extensions/')[0])"
          " | summarize extensions = make_list(pack('name', name, 'publisher', properties.publisher)) by machineId"
          " | order by machineId asc", fleet)
    assert [len(row["extensions"]) for row in r.rows] == [1, 2]
    assert r.rows[1]["extensions"][0] == {"name": "MDE.Windows", "publisher": "Microsoft.Azure.AzureDefenderForServers"}
