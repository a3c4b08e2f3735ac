"""A bad seed file is a path:line message and exit code 1 on both databases, never a traceback;
whatever else goes wrong is one line and exit code 1 or 2, the traceback only with --debug."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

import hypothesis
import pytest
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from service.config import Settings
from service.content import seedfiles
from service.content.errors import Problem, SeedValidationError
from service.content.seedfiles import MAX_ENTRY_FILE_BYTES, MAX_FILE_BYTES, read_seed
from service.content.text import CONTROL_NAMES
from service.db import create_sync_engine
from tests.conftest import SEED
from tests.helpers import invoke, scalar, table_counts

PROBIOTICS = "snippets/probiotics.en-US.md"
REFUSED = "is not allowed"


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    content = path.read_bytes().decode("utf-8")
    assert content.count(old) == 1, old
    path.write_bytes(content.replace(old, new).encode("utf-8"))


def seeded(cli: CliRunner, root: Path, database_url: str) -> dict[str, int]:
    """Seed `root` as it is; the row counts every refused run after it must leave alone."""
    result = invoke(cli, "seed", str(root))
    assert result.exit_code == 0, result.output
    return table_counts(database_url)


def assert_refused(output: str, *expected: str) -> None:
    for part in expected:
        assert part in output, output
    assert "Traceback" not in output, output
    assert "nothing was written" in output, output


# --- characters that have no place in text ----------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            PROBIOTICS, "Under this definition", "Under this\x00definition",
            "seed/snippets/probiotics.en-US.md:16: U+0000 NULL at column 235 is not allowed",
            id="nul-in-body",
        ),
        pytest.param(
            PROBIOTICS, "More controlled", "More\x1b[31mcontrolled",
            "seed/snippets/probiotics.en-US.md:20: U+001B ESCAPE at column 104 is not allowed",
            id="escape-in-body",
        ),
        pytest.param(
            PROBIOTICS, "More controlled", "More\U0001ffffcontrolled",
            "seed/snippets/probiotics.en-US.md:20: U+1FFFF (a Unicode noncharacter) at column 104",
            id="plane-1-noncharacter-in-body",
        ),
        pytest.param(
            PROBIOTICS, "More controlled", "More\rcontrolled",
            "seed/snippets/probiotics.en-US.md:20: U+000D CARRIAGE RETURN at column 104 is not "
            "allowed: a carriage return belongs only in a CRLF line ending",
            id="lone-carriage-return",
        ),
        pytest.param(
            PROBIOTICS, 'title: "Probiotics:', 'title: "Probiotics:\x07',
            "seed/snippets/probiotics.en-US.md:4: U+0007 ALERT at column 20 is not allowed",
            id="bell-in-front-matter",
        ),
        pytest.param(
            PROBIOTICS, "Probiotics are live", "Probiotics\x7f are live",
            "seed/snippets/probiotics.en-US.md:5: U+007F DELETE at column 21 is not allowed",
            id="delete-in-front-matter",
        ),
        pytest.param(
            PROBIOTICS, 'title: "Probiotics:', 'title: "Probiotics:\\0',
            "seed/snippets/probiotics.en-US.md:4: U+0000 NULL (written as an escape in the "
            "quoted string at column 8) is not allowed",
            id="escaped-nul-in-quoted-value",
        ),
        pytest.param(
            "catalog/topics.yaml", "{en-US: Microbiome,", "{en-US: Micro\x85biome,",
            "seed/catalog/topics.yaml:2: U+0085 NEXT LINE at column 23 is not allowed",
            id="c1-control-in-catalog",
        ),
        pytest.param(
            "catalog/topics.yaml", "{en-US: Microbiome,", '{en-US: "Micro\\x9bbiome",',
            "seed/catalog/topics.yaml:2: U+009B CONTROL SEQUENCE INTRODUCER (written as an escape",
            id="escaped-c1-control-in-catalog",
        ),
        pytest.param(
            "takeaways/takeaway-secretome.en-US.yaml", "The secretome", "The\ufdd0 secretome",
            "seed/takeaways/takeaway-secretome.en-US.yaml:5: U+FDD0 (a Unicode noncharacter) at "
            "column 11 is not allowed",
            id="noncharacter-in-takeaway",
        ),
    ],
)  # fmt: skip
def test_a_character_that_is_not_text_is_refused_at_its_line_on_both_databases(
    cli: CliRunner,
    settings: Settings,
    seed_copy: Path,
    relative: str,
    old: str,
    new: str,
    expected: str,
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    edit(seed_copy, relative, old, new)
    for args in (["--dry-run"], []):
        result = invoke(cli, "seed", str(seed_copy), *args)
        assert result.exit_code == 1, result.output
        assert_refused(result.output, expected, "1 problem in the seed files")
    assert table_counts(settings.database_url) == before


def test_every_refused_character_is_counted_and_the_first_named(seed_copy: Path) -> None:
    edit(seed_copy, PROBIOTICS, "More controlled", "More\x00con\x01tro\ufffflled\x00")
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert [str(problem) for problem in caught.value.problems] == [
        "seed/snippets/probiotics.en-US.md:20: U+0000 NULL at column 104 is not allowed "
        "(and 3 more): seed files hold text, without control characters or Unicode noncharacters"
    ]


def test_a_key_spelt_with_an_escaped_line_feed_is_quoted_in_a_one_line_message(
    seed_copy: Path,
) -> None:
    edit(seed_copy, "catalog/topics.yaml", "{en-US: Microbiome,", '{"en-US\\nxx": Microbiome,')
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert [str(problem) for problem in caught.value.problems] == [
        "seed/catalog/topics.yaml:2: names.'en-US\\nxx'.[key]: 'en-US\\nxx' is not a BCP 47 "
        "language tag such as 'en-US' or 'fr-FR'"
    ]


def test_control_character_names_are_unicodes_own() -> None:
    assert len(CONTROL_NAMES) == 65  # U+0000-U+001F, U+007F-U+009F
    for code, name in CONTROL_NAMES.items():
        assert unicodedata.lookup(name) == chr(code), name


def test_crlf_line_endings_are_read_as_line_feeds(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    path = seed_copy / PROBIOTICS
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 0, result.output
    assert "Nothing to write: the database already matches the seed files." in result.output
    assert table_counts(settings.database_url) == before


# --- paths that are not regular files ----------------------------------------------------------


def _folder(root: Path) -> str:
    (root / "snippets/zz-dir.en-US.md").mkdir()
    return "seed/snippets/zz-dir.en-US.md:0: is a folder, not a seed file"


def _catalog_folder(root: Path) -> str:
    (root / "catalog/markets.yaml").unlink()
    (root / "catalog/markets.yaml").mkdir()
    return "seed/catalog/markets.yaml:0: is a folder, not a seed file"


def _entry_folder_is_a_file(root: Path) -> str:
    shutil.rmtree(root / "takeaways")
    (root / "takeaways").write_text("not a folder\n", encoding="utf-8")
    return "seed/takeaways:0: is not a folder"


def _fifo(root: Path) -> str:
    os.mkfifo(root / "snippets/pipe.en-US.md")
    return "seed/snippets/pipe.en-US.md:0: is a named pipe (FIFO), not a regular file"


def _socket(root: Path) -> str:
    # a relative name: a socket's path is limited to about 100 bytes
    cwd = Path.cwd()
    os.chdir(root / "snippets")
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind("sock.en-US.md")
    finally:
        os.chdir(cwd)
    return "seed/snippets/sock.en-US.md:0: is a socket, not a regular file"


def _link_outside(root: Path) -> str:
    outside = root.parent / "elsewhere.en-US.md"
    shutil.copyfile(root / PROBIOTICS, outside)
    (root / "snippets/linked.en-US.md").symlink_to(outside)
    return (
        f"seed/snippets/linked.en-US.md:0: is a symbolic link to {outside.resolve()}, "
        "outside the seed folder"
    )


def _relative_link_outside(root: Path) -> str:
    outside = root.parent / "elsewhere.en-US.md"
    shutil.copyfile(root / PROBIOTICS, outside)
    (root / "snippets/linked.en-US.md").symlink_to("../../elsewhere.en-US.md")
    return (
        f"seed/snippets/linked.en-US.md:0: is a symbolic link to {outside.resolve()}, "
        "outside the seed folder"
    )


def _entry_folder_link_outside(root: Path) -> str:
    # the files in it are regular files: only the folder leads elsewhere
    outside = root.parent / "other-snippets"
    shutil.copytree(root / "snippets", outside)
    shutil.rmtree(root / "snippets")
    (root / "snippets").symlink_to(outside)
    return f"seed/snippets:0: is a symbolic link to {outside.resolve()}, outside the seed folder"


def _catalog_folder_link_outside(root: Path) -> str:
    outside = root.parent / "other-catalog"
    shutil.copytree(root / "catalog", outside)
    shutil.rmtree(root / "catalog")
    (root / "catalog").symlink_to("../other-catalog")
    return f"seed/catalog:0: is a symbolic link to {outside.resolve()}, outside the seed folder"


def _broken_link(root: Path) -> str:
    (root / "snippets/gone.en-US.md").symlink_to("deleted.en-US.md")
    return (
        "seed/snippets/gone.en-US.md:0: is a broken symbolic link: deleted.en-US.md does not exist"
    )


def _link_loop(root: Path) -> str:
    (root / "snippets/loop.en-US.md").symlink_to("loop.en-US.md")
    return "seed/snippets/loop.en-US.md:0: is a symbolic link that leads back to itself"


@pytest.mark.parametrize(
    "make",
    [
        _folder,
        _catalog_folder,
        _entry_folder_is_a_file,
        _fifo,
        _socket,
        _link_outside,
        _relative_link_outside,
        _entry_folder_link_outside,
        _catalog_folder_link_outside,
        _broken_link,
        _link_loop,
    ],
)
def test_a_path_that_is_not_a_regular_file_is_a_problem_with_its_path(
    cli: CliRunner, settings: Settings, seed_copy: Path, make: Callable[[Path], str]
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    expected = make(seed_copy)
    for args in (["--dry-run"], []):
        result = invoke(cli, "seed", str(seed_copy), *args)
        assert result.exit_code == 1, result.output
        assert_refused(result.output, expected)
    assert table_counts(settings.database_url) == before


def test_a_file_that_cannot_be_read_is_a_problem_with_its_path(
    cli: CliRunner, settings: Settings, seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    locked = seed_copy / PROBIOTICS
    locked.chmod(0)
    if os.geteuid() == 0:
        # root reads a file whatever its mode: answer as the system answers everyone else
        real_open = Path.open

        def refusing_open(path: Path, *args: object, **kwargs: object) -> object:
            if path == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "open", refusing_open)
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 1, result.output
    assert_refused(
        result.output, "seed/snippets/probiotics.en-US.md:0: cannot be read: Permission denied"
    )
    assert table_counts(settings.database_url) == before


def test_a_file_too_large_to_be_a_seed_file_is_not_read_whole(seed_copy: Path) -> None:
    # sparse: no disk used, no time spent
    with (seed_copy / PROBIOTICS).open("r+b") as file:
        file.truncate(MAX_ENTRY_FILE_BYTES + 1)
    with (seed_copy / "catalog/citations.yaml").open("r+b") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    with (seed_copy / "catalog/topics.yaml").open("r+b") as file:
        # past an entry file's limit but within a catalog's: read, and found not to be text
        file.truncate(MAX_ENTRY_FILE_BYTES + 1)
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    citations, topics, probiotics = (str(problem) for problem in caught.value.problems)
    assert citations == "seed/catalog/citations.yaml:0: is larger than 16 MiB"
    assert topics.startswith("seed/catalog/topics.yaml:"), topics
    assert "U+0000 NULL at column 1 is not allowed" in topics
    assert probiotics == "seed/snippets/probiotics.en-US.md:0: is larger than 1 MiB"


def test_a_folder_with_too_many_files_is_refused_before_any_is_read(
    seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seedfiles, "MAX_FOLDER_FILES", 3)
    for number in range(4):
        (seed_copy / f"disclaimers/extra-{number}.en-US.md").write_text("not read\n")
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert [str(problem) for problem in caught.value.problems] == [
        "seed/disclaimers:0: holds more than 3 .md files, more than a seed folder may: split "
        "the content into several seed folders",
        "seed/snippets:0: holds more than 3 .md files, more than a seed folder may: split the "
        "content into several seed folders",
        "seed/takeaways:0: holds more than 3 .yaml files, more than a seed folder may: split "
        "the content into several seed folders",
    ]


def test_a_catalog_with_too_many_entries_is_refused_at_its_first_line(
    seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seedfiles, "MAX_CATALOG_ITEMS", 3)
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert "seed/catalog/markets.yaml:1: holds 4 markets; at most 3" in [
        str(problem) for problem in caught.value.problems
    ]


LANGUAGES = [
    "af",
    "am",
    "ar",
    "az",
    "be",
    "bg",
    "bn",
    "bs",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "ga",
    "gl",
    "gu",
    "he",
    "hi",
    "hr",
    "hu",
    "hy",
    "id",
    "is",
    "it",
    "ja",
    "ka",
    "kk",
    "km",
    "kn",
    "ko",
    "ky",
    "lo",
    "lt",
    "lv",
    "mk",
    "ml",
    "mn",
    "mr",
    "ms",
    "my",
    "ne",
    "nl",
    "pa",
    "pl",
    "pt",
    "ro",
    "ru",
    "si",
    "sk",
    "sl",
    "sq",
    "sr",
]


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            "catalog/topics.yaml",
            "names: {en-US: Microbiome, fr-FR: Microbiote}",
            "names: {" + ", ".join(f"{language}: M" for language in LANGUAGES[:51]) + "}",
            "seed/catalog/topics.yaml:2: names: Dictionary should have at most 50 items after "
            "validation, not more",
            id="names-in-51-locales",
        ),
        pytest.param(
            "catalog/markets.yaml",
            "locales: [en-US]",
            "locales: [en-US, " + ", ".join(LANGUAGES[:50]) + "]",
            "seed/catalog/markets.yaml:4: locales: List should have at most 50 items after "
            "validation, not 51",
            id="market-with-51-locales",
        ),
    ],
)
def test_a_field_past_its_size_is_refused_at_its_line(
    seed_copy: Path, relative: str, old: str, new: str, expected: str
) -> None:
    edit(seed_copy, relative, old, new)
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert [str(problem) for problem in caught.value.problems] == [expected]


@pytest.mark.parametrize("key", ["../../escape", "..", "a/b", "/etc/passwd", "a\\b", "c:x"])
@pytest.mark.parametrize(
    ("relative", "line"),
    [(PROBIOTICS, 2), ("takeaways/takeaway-secretome.en-US.yaml", 1)],
)
def test_a_key_cannot_name_a_path(seed_copy: Path, key: str, relative: str, line: int) -> None:
    # keys name the files an export writes (<out>/<locale>/snippets/<key>.json)
    original = relative.split("/")[-1].split(".")[0]
    edit(seed_copy, relative, f"key: {original}\n", f"key: {json.dumps(key)}\n")
    with pytest.raises(SeedValidationError) as caught:
        read_seed(seed_copy)
    assert [str(problem) for problem in caught.value.problems] == [
        f"seed/{relative}:{line}: key: String should match pattern '^[a-z0-9]+(?:-[a-z0-9]+)*$'"
    ]


def test_hidden_files_are_skipped_with_a_warning(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    # an editor's lock file (a link to nowhere) and a copier's metadata file (binary)
    (seed_copy / "snippets/.#probiotics.en-US.md").symlink_to("user@host.1234:1700000000")
    (seed_copy / "snippets/._probiotics.en-US.md").write_bytes(b"\x00\x05\x16\x07\x00\x02")
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 0, result.output
    assert (
        "warning: seed/snippets/.#probiotics.en-US.md: skipped: hidden files are not read"
        in result.output
    )
    assert "warning: seed/snippets/._probiotics.en-US.md: skipped" in result.output
    assert "Nothing to write" in result.output
    assert table_counts(settings.database_url) == before


def test_a_link_to_a_file_inside_the_seed_folder_is_read(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    seeded(cli, seed_copy, settings.database_url)
    (seed_copy / "drafts").mkdir()
    draft = (seed_copy / PROBIOTICS).read_text(encoding="utf-8")
    draft = draft.replace("key: probiotics", "key: probiotics-linked")
    (seed_copy / "drafts/probiotics-linked.en-US.md").write_text(draft, encoding="utf-8")
    (seed_copy / "snippets/probiotics-linked.en-US.md").symlink_to(
        "../drafts/probiotics-linked.en-US.md"
    )
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 0, result.output
    assert "Wrote 1 new revisions." in result.output
    url = settings.database_url
    assert scalar(url, "SELECT count(*) FROM entries WHERE key = 'probiotics-linked'") == 1


# --- whatever else goes wrong: one line, an exit code, the traceback only on request ------------


def _refuse_new_revisions(database_url: str) -> None:
    engine = create_sync_engine(database_url)
    if engine.dialect.name == "sqlite":
        statements = [
            "CREATE TRIGGER refuse_revisions BEFORE INSERT ON revisions "
            "BEGIN SELECT RAISE(ABORT, 'revisions are frozen here'); END"
        ]
    else:
        statements = [
            "CREATE FUNCTION refuse_revisions() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'revisions are frozen here'; END $$",
            "CREATE TRIGGER refuse_revisions BEFORE INSERT ON revisions "
            "FOR EACH ROW EXECUTE FUNCTION refuse_revisions()",
        ]
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_a_value_the_database_refuses_is_one_line_without_sql_or_file_contents(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    edit(seed_copy, PROBIOTICS, "More controlled", "Several more controlled")
    _refuse_new_revisions(settings.database_url)

    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        "error: the database refused the operation: revisions are frozen here; "
        "run `contentapi --debug ...` for the traceback"
    ]
    assert table_counts(settings.database_url) == before

    debug = invoke(cli, "--debug", "seed", str(seed_copy))
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.output
    assert debug.output.strip().endswith(
        "error: the database refused the operation: revisions are frozen here"
    )
    assert table_counts(settings.database_url) == before


def test_an_unexpected_error_is_one_line_and_the_traceback_is_for_debug(
    cli: CliRunner, settings: Settings, seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = seeded(cli, seed_copy, settings.database_url)
    edit(seed_copy, PROBIOTICS, "More controlled", "Several more controlled")

    def broken_render(markdown: str) -> None:
        raise RuntimeError(f"renderer broke\n{markdown}")

    monkeypatch.setattr("service.content.service.render", broken_render)
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unexpected error (RuntimeError): renderer broke; "
        "run `contentapi --debug ...` for the traceback"
    ]
    assert table_counts(settings.database_url) == before

    for args, env in ((["--debug"], None), ([], {"CONTENT_API_DEBUG": "1"})):
        debug = invoke(cli, *args, "seed", str(seed_copy), env=env)
        assert debug.exit_code == 1
        assert "Traceback (most recent call last)" in debug.output
        assert "RuntimeError: renderer broke" in debug.output
    assert table_counts(settings.database_url) == before


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [["seed"], ["seed", "--dry-run"], ["migrate"], ["publish", "--note", "n"], ["serve"]],
    ids=" ".join,
)
def test_an_unreachable_database_is_exit_code_2_for_every_command(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_unused_port()}/nowhere"
    monkeypatch.setenv("CONTENT_API_DATABASE_URL", url)
    monkeypatch.setenv("CONTENT_API_ENV", "development")
    result = invoke(cli, *command)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: cannot reach the database: connection failed:"), line
    assert line.endswith("(check CONTENT_API_DATABASE_URL)"), line


def test_a_folder_given_as_the_sqlite_database_is_exit_code_2(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTENT_API_DATABASE_URL", f"sqlite:///{tmp_path}")
    result = invoke(cli, "seed", str(SEED))
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: cannot reach the database: unable to open database file "
        "(check CONTENT_API_DATABASE_URL)"
    ]


def test_development_serve_refuses_a_bad_seed_file_before_serving(
    cli: CliRunner, settings: Settings, seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def serve_forever(*args: object, **kwargs: object) -> None:
        raise AssertionError("served despite a bad seed file")

    monkeypatch.setattr(uvicorn, "run", serve_forever)
    monkeypatch.setenv("CONTENT_API_SEED_PATH", str(seed_copy))
    edit(seed_copy, PROBIOTICS, "Under this definition", "Under this\x00definition")
    before = table_counts(settings.database_url)
    result = invoke(cli, "serve")
    assert result.exit_code == 1, result.output
    assert_refused(result.output, "seed/snippets/probiotics.en-US.md:16: U+0000 NULL at column 235")
    assert table_counts(settings.database_url) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["seed", "--author", "ann\x00"], "error: --author: U+0000 NULL is not allowed"),
        (["seed", "--author", "a" * 201], "error: --author has 201 characters; at most 200"),
        (["publish", "--note", "n" * 501], "error: --note has 501 characters; at most 500"),
        (["publish", "--note", "n\x1b", "--by", "b"], "error: --note: U+001B ESCAPE"),
    ],
)
def test_free_text_options_are_refused_alike_on_both_databases(
    cli: CliRunner, settings: Settings, args: list[str], expected: str
) -> None:
    before = table_counts(settings.database_url)
    result = invoke(cli, *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith(expected), result.output
    assert table_counts(settings.database_url) == before


# --- any bytes, any YAML-ish text: problems or success, never a crash ---------------------------

TARGETS = [PROBIOTICS, "takeaways/takeaway-secretome.en-US.yaml", "catalog/markets.yaml"]
YAML_PIECES = [
    "---\n", "...\n", "\n", "  ", "\t", "\r\n", "\r", "key: ", "locale: en-US\n", "title: ",
    "markets: [US]\n", "position: ", "99999999999999999999999", "-1", ".inf", "1e400", "0x1F",
    "2020-01-01", "~", "null", "yes", "- ", "? ", ": ", "[", "]", "{", "}", ",", "&a ", "*a",
    "<<: *a", "!!python/object/apply:os.system ['true']", "!!binary aGk=", "!!set {a}",
    "%YAML 1.1\n", '"', "'", '"\\0"', '"\\n"', '"\\t": ', '"\\x85"', '"\\uFFFE"',
    '"\\U0001FFFE"', "|\n", ">-\n",
    "# ", "<b>", "&#0;", "<script>", "names: {en-US: ", "\ufeff", "\u2028", "\x85", "\x00",
    "ü", "名", "🙂",
]  # fmt: skip


def _yamlish_text() -> st.SearchStrategy[str]:
    pieces = st.sampled_from(YAML_PIECES) | st.text(max_size=12)
    soup = st.lists(pieces, max_size=40).map("".join)
    return soup | soup.map(lambda body: "---\n" + body + "\n---\n" + body)


def _outcome(root: Path, relative: str, content: bytes) -> None:
    """Read a copy of the seed folder with one file replaced: valid, or problems as one-line
    path:line messages; any other exception fails the test."""
    (root / relative).write_bytes(content)
    problems: list[Problem] = []
    try:
        read_seed(root)
    except SeedValidationError as exc:
        problems = exc.problems
    for problem in problems:
        assert problem.path.startswith("seed/"), problem
        assert problem.line >= 0, problem
        assert "\n" not in problem.message, problem


def _with_seed_copy(check: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "seed"
        shutil.copytree(SEED, root)
        check(root)


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(relative=st.sampled_from(TARGETS), content=st.binary(max_size=600))
def test_any_bytes_in_a_seed_file_are_problems_never_a_crash(relative: str, content: bytes) -> None:
    _with_seed_copy(lambda root: _outcome(root, relative, content))


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(relative=st.sampled_from(TARGETS), content=_yamlish_text())
def test_any_yamlish_text_in_a_seed_file_is_problems_never_a_crash(
    relative: str, content: str
) -> None:
    _with_seed_copy(lambda root: _outcome(root, relative, content.encode("utf-8")))


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    relative=st.sampled_from(TARGETS),
    position=st.floats(min_value=0, max_value=1),
    insert=_yamlish_text(),
)
def test_any_text_inserted_into_a_valid_file_is_problems_never_a_crash(
    relative: str, position: float, insert: str
) -> None:
    def check(root: Path) -> None:
        original = (root / relative).read_text(encoding="utf-8")
        cut = int(len(original) * position)
        _outcome(root, relative, (original[:cut] + insert + original[cut:]).encode("utf-8"))

    _with_seed_copy(check)
