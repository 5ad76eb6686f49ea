"""``carbonmonitor report RUN`` through the real CLI (a subprocess), on runs stored with the
fake backend."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from cli_helpers import run_cli

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.summary import energy_text, mass_text


def make_run(db: Path) -> str:
    """100 W cpu + 10 W memory: 8 s of training then 2 s of evaluation."""
    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), name="resnet", country="DE")
    t.start()
    with t.phase("train"):
        clock.advance(8)
        t.tick()
        t.add_work(samples=256)
    with t.phase("eval"):
        clock.advance(2)
        t.tick()
    return t.stop().identity.run_id


class Text(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_report_last_writes_a_self_contained_html_file(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = make_run(db)
    out = tmp_path / "reports" / "x.html"
    done = run_cli(["report", "last", "-o", str(out), "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and str(out) in done.stderr
    page = out.read_text(encoding="utf-8")
    result = carbonmonitor.load(run_id, db=str(db))
    parsed = Text(page)
    text = " ".join("".join(parsed.parts).split())
    assert run_id in text and "resnet" in text
    assert energy_text(result.energy_j) in text and mass_text(result.co2e_g) in text
    assert "svg" in parsed.tags and "script" not in parsed.tags
    assert not list(out.parent.glob(".x.html.*"))  # no temporary file left behind


def test_markdown_with_figures_links_the_files_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = make_run(db)
    out, figures = tmp_path / "report.md", tmp_path / "figs"
    done = run_cli(["report", run_id[:-2], "-o", str(out), "--figures", str(figures),
                    "--db", str(db)])
    assert done.returncode == 0, done.stderr
    md = out.read_text(encoding="utf-8")  # the .md suffix chose Markdown
    assert md.startswith("# Carbon report: resnet")
    for stem in ("impact", "power", "devices", "intensity"):  # the HTML report's four figures
        assert (figures / f"{run_id}-{stem}.png").read_bytes()[:4] == b"\x89PNG"
        svg = figures / f"{run_id}-{stem}.svg"
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
        assert f"(<figs/{run_id}-{stem}.svg>)" in md
    done = run_cli(["report", "last", "--format", "md", "--db", str(db)])
    assert done.returncode == 0 and done.stdout.startswith("# Carbon report: resnet")


def test_an_unknown_run_says_so_and_how_to_find_one(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    make_run(db)
    done = run_cli(["report", "nope", "-o", str(tmp_path / "x.html"), "--db", str(db)])
    assert done.returncode == 2
    assert done.stderr.startswith("carbonmonitor: error: no run 'nope'")
    assert "`carbonmonitor runs` lists the run ids" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.html").exists()


def test_advice_prints_each_item_with_its_evidence_or_says_there_is_none(tmp_path: Path) -> None:
    """A run in Poland whose training is 80 % of its energy: the cleaner-place and dominant-
    phase rules speak, with their numbers (carbonmonitor.advice decides; this is the CLI)."""
    from runs import poland_train_eval_run

    from carbonmonitor.advice import advise

    db = tmp_path / "runs.db"
    result = poland_train_eval_run(str(db))
    expected = advise(result, carbonmonitor.series(result.identity.run_id, db=str(db)))
    assert {a.code for a in expected} >= {"cleaner-place", "dominant-phase"}
    done = run_cli(["advice", "last", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    for i, item in enumerate(expected, start=1):
        assert f"{i}. {item.title}" in done.stdout
        assert f"evidence: {item.evidence}" in done.stdout
    assert f"saves about {mass_text(expected[0].saving.co2e_g)}" in done.stdout

    clean = tmp_path / "clean.db"
    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                quiet=True, db=str(clean), country="SE")
    t.start()
    clock.advance(10)
    t.stop()
    done = run_cli(["advice", "last", "--db", str(clean)])
    assert done.returncode == 0 and "no advice for run" in done.stdout
    missing = run_cli(["advice", "nope", "--db", str(clean)])
    assert missing.returncode == 2 and "carbonmonitor runs" in missing.stderr


def test_reports_and_figures_get_the_permissions_a_plain_file_would(tmp_path: Path) -> None:
    """Written through a temporary file, they used to stay 0600 (private to their owner)."""
    import os
    import stat

    db = tmp_path / "runs.db"
    make_run(db)
    mask = os.umask(0o022)
    os.umask(mask)
    out, figures = tmp_path / "r.md", tmp_path / "figs"
    done = run_cli(["report", "last", "-o", str(out), "--figures", str(figures), "--db", str(db)])
    assert done.returncode == 0, done.stderr
    for path in (out, *figures.iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    out.chmod(0o640)  # an existing file keeps its mode
    assert run_cli(["report", "last", "-o", str(out), "--db", str(db)]).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_the_format_follows_the_suffix_and_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    make_run(db)
    done = run_cli(["report", "last", "-o", str(tmp_path / "r.htm"), "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.htm").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    done = run_cli(["report", "last", "-o", str(tmp_path / "r.txt"), "--db", str(db)])
    assert done.returncode == 2 and not (tmp_path / "r.txt").exists()
    assert "r.txt" in done.stderr and "--format html|md" in done.stderr
    done = run_cli(["report", "last", "--format", "md", "-o", str(tmp_path / "r.html"),
                    "--db", str(db)])
    assert done.returncode == 2 and not (tmp_path / "r.html").exists()
    assert "is named as an HTML file" in done.stderr and ".md" in done.stderr
    done = run_cli(["report", "last", "--format", "md", "-o", str(tmp_path / "r.txt"),
                    "--db", str(db)])  # said outright: written as asked
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.txt").read_text(encoding="utf-8").startswith("# Carbon report")


def test_unwritable_outputs_are_one_line_errors_and_dash_is_stdout(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    make_run(db)
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "taken.png"
    a_file.write_text("x")
    cases = [(["-o", str(folder)], "is a folder"),
             (["-o", "/proc/r.html"], "/proc/r.html"),  # /proc takes no new files
             (["-o", str(tmp_path / "r.html"), "--figures", str(a_file)], "--figures"),
             (["-o", str(tmp_path / "r.html"), "--figures", "/proc/figs"], "/proc/figs")]
    for extra, said in cases:
        done = run_cli(["report", "last", *extra, "--db", str(db)])
        assert done.returncode == 2, (extra, done.stderr)
        assert "Traceback" not in done.stderr and said in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_cli(["report", "last", "-o", str(a_file / "r.html"), "--db", str(db)])
    assert done.returncode == 2 and "a part of that path is a file" in done.stderr
    done = run_cli(["report", "last", "-o", "-", "--format", "md", "--db", str(db)])
    assert done.returncode == 0 and done.stdout.startswith("# Carbon report")
    assert not Path("-").exists()
    out = tmp_path / "new" / "deeper" / "r.html"  # a missing folder is made, and said
    done = run_cli(["report", "last", "-o", str(out), "--db", str(db)])
    assert done.returncode == 0 and out.exists()
    assert f"made the folder {out.parent}" in done.stderr


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    import subprocess

    from cli_helpers import CLI, clean_env

    db = tmp_path / "runs.db"
    for _ in range(3):
        make_run(db)
    for args in (["runs"], ["show", "last"], ["report", "last", "--format", "md"]):
        proc = subprocess.Popen([*CLI, *args, "--db", str(db)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=clean_env())
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(5)
        proc.stdout.close()  # as `| head -c 5` does
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) in (0, 141), err
        assert "Traceback" not in err and "BrokenPipe" not in err, err
