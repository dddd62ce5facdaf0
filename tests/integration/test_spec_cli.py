"""`fraudops spec init` and `fraudops spec check` on a user's file, good and bad."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fraudops_cli.main import app
from tests.unit.test_spec import CLAIMS, claims_file

pytestmark = pytest.mark.integration


def test_init_drafts_a_spec_that_check_accepts_on_the_same_file(tmp_path, small_history):
    data = tmp_path / "cards.csv"
    small_history.to_csv(data, sep=";", index=False)
    out = tmp_path / "cards.yaml"
    runner = CliRunner()
    drafted = runner.invoke(
        app, ["spec", "init", "--data", str(data), "--sep", ";", "--out", str(out)]
    )
    assert drafted.exit_code == 0, drafted.output
    assert "sep: ;" in out.read_text() or "sep: ';'" in out.read_text()
    assert "type: int" in out.read_text() and "type: str" not in out.read_text()
    checked = runner.invoke(app, ["spec", "check", str(out), "--data", str(data)])
    assert checked.exit_code == 0, checked.output
    assert f"{len(small_history):,} events" in checked.output
    assert "customer_id_count_1d" in checked.output.lower()
    again = runner.invoke(app, ["spec", "init", "--data", str(data), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_init_declares_text_ids_as_str_and_check_accepts_the_file(tmp_path, small_history):
    data = tmp_path / "payments.csv"
    text_ids = small_history.assign(
        TRANSACTION_ID="T" + small_history["TRANSACTION_ID"].astype(str),
        CUSTOMER_ID="C" + small_history["CUSTOMER_ID"].astype(str),
    )
    text_ids.to_csv(data, index=False)
    out = tmp_path / "payments.yaml"
    runner = CliRunner()
    drafted = runner.invoke(app, ["spec", "init", "--data", str(data), "--out", str(out)])
    assert drafted.exit_code == 0, drafted.output
    spec = out.read_text()
    assert "column: TRANSACTION_ID\n  type: str" in spec
    assert "column: CUSTOMER_ID\n  type: str" in spec
    assert "column: TERMINAL_ID\n  type: int" in spec
    checked = runner.invoke(app, ["spec", "check", str(out), "--data", str(data)])
    assert checked.exit_code == 0, checked.output


def test_check_lists_the_features_of_a_claims_spec(tmp_path):
    spec = tmp_path / "claims.yaml"
    spec.write_text(CLAIMS.replace("[30d, 365d]", "[30d]"))
    rows = [
        "claim_id;step;policy_no;garage;claim_amount;vehicle;fraud",
        "C-1;0;P1;G1;100,50;car;N",
        "C-2;3;P1;G2;2000,00;van;Y",
        "C-3;400;P2;G1;10,00;;N",
    ]
    data = claims_file(tmp_path, rows)
    result = CliRunner().invoke(app, ["spec", "check", str(spec), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "3 events" in result.output and "vehicle  (categorical)" in result.output
    assert "garages_30d" in result.output


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (("[30d, 365d]", "[30d, 1y]"), "aggregations.0.windows.1"),
        (("{column: vehicle}", "{column: model}"), "'model' (categorical.0.column)"),
        (("[30d, 365d]", "[30d, 365d]"), "aggregations.0.windows.1: window 365d"),
    ],
)
def test_check_exits_2_naming_the_key(tmp_path, edit, words):
    spec = tmp_path / "claims.yaml"
    spec.write_text(CLAIMS.replace(*edit))
    result = CliRunner().invoke(
        app, ["spec", "check", str(spec), "--data", str(claims_file(tmp_path))]
    )
    assert result.exit_code == 2
    assert words in result.output


def test_train_with_a_missing_spec_exits_2_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["train", "--spec", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "dataset_spec: dataset spec" in result.output and "nope.yaml" in result.output
    assert not (tmp_path / "home" / "mlflow.db").exists()
