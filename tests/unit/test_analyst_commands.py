"""`fraudops analyst add|disable|list`: console users from the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fraudops_cli.main import app

pytestmark = pytest.mark.unit


def run(tmp_path, *args: str):
    return CliRunner().invoke(app, ["analyst", *args], env={"FRAUDOPS_HOME": str(tmp_path)})


def test_add_prints_a_token_list_shows_roles_and_disable_revokes(tmp_path):
    added = run(tmp_path, "add", "ann", "--role", "lead")
    assert added.exit_code == 0 and "token, shown once" in added.output
    assert run(tmp_path, "add", "bob").exit_code == 0
    assert run(tmp_path, "list").output.splitlines() == [
        "ann\tlead\tenabled",
        "bob\tanalyst\tenabled",
    ]
    assert run(tmp_path, "disable", "bob").output.strip() == "disabled bob"
    assert run(tmp_path, "list").output.splitlines()[1] == "bob\tanalyst\tdisabled"


def test_a_refused_change_is_one_error_line_and_exit_2(tmp_path):
    unknown = run(tmp_path, "disable", "nobody")
    assert unknown.exit_code == 2 and "error: name: no analyst 'nobody'" in unknown.output
    bad_role = run(tmp_path, "add", "cy", "--role", "admin")
    assert bad_role.exit_code == 2 and bad_role.output.startswith("error: ")
    assert "Traceback" not in bad_role.output
