"""Native feel: progress bars only when asked, logging not print, HTML repr, typed package."""

import ast
import configparser
import importlib.resources
import logging
from pathlib import Path

from conftest import tiny_classifier

import skearly

PACKAGE = Path(skearly.__file__).resolve().parent
ROOT = PACKAGE.parent


def test_verbose_shows_progress_bars_on_stderr(tiny_encoder, toy_data, capsys):
    X_train, y_train, X_test, _ = toy_data
    clf = tiny_classifier(tiny_encoder, epochs=1, verbose=1).fit(X_train, y_train)
    fit_out = capsys.readouterr()
    assert "fine-tuning" in fit_out.err and "100%" in fit_out.err and "batch" in fit_out.err
    assert fit_out.out == ""  # bars go to stderr, stdout stays clean for the user's own output

    clf.predict(X_test)
    predict_out = capsys.readouterr()
    assert "predicting" in predict_out.err and "100%" in predict_out.err
    assert predict_out.out == ""


def test_verbose_zero_prints_nothing(tiny_encoder, toy_data, capsys):
    X_train, y_train, X_test, y_test = toy_data
    capsys.readouterr()
    clf = tiny_classifier(tiny_encoder, epochs=1, verbose=0).fit(X_train, y_train)
    clf.predict(X_test)
    clf.predict_proba(X_test)
    clf.score(X_test, y_test)
    assert capsys.readouterr() == ("", "")


def test_fit_reports_through_logging(tiny_encoder, toy_data, caplog):
    X_train, y_train, _, _ = toy_data
    with caplog.at_level(logging.INFO, logger="skearly"):
        tiny_classifier(tiny_encoder, epochs=1).fit(X_train, y_train)
    records = [r for r in caplog.records if r.name.startswith("skearly.")]
    assert records, "fit should log its progress to the 'skearly' loggers"
    assert any(r.name == "skearly.estimator" and "fitted in" in r.getMessage() for r in records)


def test_no_print_calls_in_the_package():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use the logging module (or tqdm for progress), not print: " + ", ".join(offenders)


def test_html_repr(fitted):
    unfitted_html = tiny_classifier("some/encoder")._repr_html_()
    assert "EarlyExitTextClassifier" in unfitted_html and "threshold" in unfitted_html
    assert "EarlyExitTextClassifier" in fitted._repr_html_()
    assert "EarlyExitTextClassifier(" in repr(fitted)


def test_py_typed_marker_is_package_data():
    assert importlib.resources.files("skearly").joinpath("py.typed").is_file()
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "py.typed" in setup["options.package_data"]["skearly"].split()
