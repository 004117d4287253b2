"""The documentation site: its code comes from real sections, it builds strict,
and every HTTP exchange it shows is replayed against the three integrations."""

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import BASE

from shared import demo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FRAMEWORK_TABS = ("Flask", "FastAPI", "Django")
# Where a framework tab's code may come from: the integration, or the stock
# host app of that framework the tests mount it in.
FRAMEWORK_DIRS = {
    "Flask": ("integrations/flask_app/", "tests/hosts/flask_"),
    "FastAPI": ("integrations/fastapi_app/", "tests/hosts/fastapi_"),
    "Django": ("integrations/django_app/", "tests/hosts/django_"),
}

# --8<-- "path:section", as pymdownx.snippets reads it (an escaped `;--8<--` is text).
SNIPPET = re.compile(r'^\s*-+8<-+[ \t]+"(?P<target>[^"]+)"\s*$')
SECTION_NAME = re.compile(r"[a-z][-_0-9a-z]*")
TAB = re.compile(r'^(?P<indent>\s*)=== "(?P<label>[^"]+)"\s*$')


def snippet_references() -> list[tuple[str, str]]:
    """Every snippet a page includes, as (where, "path:section")."""
    references = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if match := SNIPPET.match(line):
                where = f"{page.relative_to(ROOT)}:{number}"
                references.append((where, match["target"]))
    return references


def reference_problem(where: str, target: str) -> str | None:
    """Why `target` cannot be included, or None when its section is there."""
    path, _, section = target.rpartition(":")
    if not path or not SECTION_NAME.fullmatch(section):
        return f"{where}: {target!r} names no section (never whole files or lines)"
    source = ROOT / path
    if not source.is_file():
        return f"{where}: {path} does not exist"
    text = source.read_text()
    missing = [
        marker
        for marker in (f"[start:{section}]", f"[end:{section}]")
        if not re.search(rf"--8<--\s*{re.escape(marker)}", text)
    ]
    if missing:
        return f"{where}: {path} has no {' and no '.join(missing)} marker"
    if text.index(f"[start:{section}]") > text.index(f"[end:{section}]"):
        return f"{where}: {path} ends section {section!r} before it starts"
    return None


def test_every_snippet_section_exists():
    references = snippet_references()
    assert references, "no page includes any code: is the snippet syntax right?"
    problems = [
        problem
        for where, target in references
        if (problem := reference_problem(where, target))
    ]
    assert not problems, "Missing snippet sections:\n" + "\n".join(problems)


def test_framework_tabs_come_as_flask_fastapi_django():
    """A reader's tab choice holds only if every tab set has the same labels."""
    problems = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        groups: list[list[str]] = []
        for number, line in enumerate(lines):
            if not (match := TAB.match(line)):
                continue
            label = match["label"]
            if label == FRAMEWORK_TABS[0]:
                groups.append([])
            if not groups:
                problems.append(f"{page.name}:{number + 1}: tab {label!r} before Flask")
                continue
            groups[-1].append(label)
            # What the tab includes must come from that framework's integration.
            indent = len(match["indent"])
            for body in lines[number + 1 :]:
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                snippet = SNIPPET.match(body)
                if snippet and not snippet["target"].startswith(
                    FRAMEWORK_DIRS.get(label, ("?",))
                ):
                    problems.append(
                        f"{page.name}:{number + 1}: the {label} tab includes "
                        f"{snippet['target']}"
                    )
        problems += [
            f"{page.name}: tab set {group} is not {list(FRAMEWORK_TABS)}"
            for group in groups
            if tuple(group) != FRAMEWORK_TABS
        ]
    assert not problems, "\n".join(problems)


@functools.cache
def build_site() -> Path:
    """The site, built with --strict once per test session (the browser test too)."""
    site = Path(tempfile.mkdtemp(prefix="cookbook-site-"))
    atexit.register(shutil.rmtree, site, ignore_errors=True)
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site


def test_site_builds_strict():
    site = build_site()
    assert (site / "index.html").is_file()
    assert (site / "notebooks" / "01-storage-and-mapping" / "index.html").is_file()


# The HTTP exchanges the pages show. Each page is replayed from the state
# `make serve` starts in (the demo data), against every framework. Requests
# leave out Host and Authorization; responses show every attribute but the
# OMITTABLE ones. Ids and timestamps are matched by shape: an id a response
# reveals is then expected wherever the page uses it again.

# What a page may leave out of a response body to keep it short.
OMITTABLE = {"meta", "description", "documentationUri"}
# The lists whose order means something; any other list is compared as a set.
ORDERED = {"Resources", "Operations"}
# The pages show `make serve` at SITE_ROOT; the tests mount SCIM at BASE.
SITE_PREFIX = "/scim/v2"
SITE_ROOT = "http://127.0.0.1:8000" + SITE_PREFIX
TEST_ROOT = BASE
HTTP_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```http[^\n]*\n(?P<text>.*?)^(?P=indent)```", re.M | re.S
)
REQUEST_LINE = re.compile(r"(?P<method>[A-Z]+) (?P<target>/\S.*) HTTP/1\.1")
STATUS_LINE = re.compile(r"HTTP/1\.1 (?P<status>\d{3})( .*)?")
SHAPES = re.compile(
    r"(?P<id>(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f]))"
    r"|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
)
TIME_PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"


@dataclass
class Message:
    where: str
    first_line: str
    headers: dict[str, str]
    body: str


def http_messages(page: Path) -> list[Message]:
    messages = []
    text = page.read_text()
    for block in HTTP_BLOCK.finditer(text):
        indent = len(block["indent"])
        lines = [line[indent:] for line in block["text"].splitlines()]
        blank = lines.index("") if "" in lines else len(lines)
        headers = dict(line.split(": ", 1) for line in lines[1:blank])
        where = f"{page.name}:{text.count(chr(10), 0, block.start()) + 1}"
        body = "\n".join(lines[blank + 1 :]).strip()
        messages.append(Message(where, lines[0], headers, body))
    return messages


def exchanges(page: Path) -> list[tuple[Message, Message]]:
    messages = http_messages(page)
    pairs = list(zip(messages[::2], messages[1::2], strict=False))
    for request, response in pairs:
        assert REQUEST_LINE.fullmatch(request.first_line), (
            f"{request.where}: expected a request line, got {request.first_line!r}"
        )
        assert STATUS_LINE.fullmatch(response.first_line), (
            f"{response.where}: expected a status line, got {response.first_line!r}"
        )
    assert len(messages) % 2 == 0, f"{messages[-1].where}: a request with no response"
    return pairs


class Ids:
    """The ids a page shows, bound one to one to those the server made."""

    def __init__(self) -> None:
        self.actual: dict[str, str] = {}

    def substitute(self, text: str, where: str) -> str:
        def replace(match: re.Match[str]) -> str:
            if match["time"]:
                return match[0]
            assert match[0] in self.actual, (
                f"{where}: id {match[0]} is used before a response shows it"
            )
            return self.actual[match[0]]

        return SHAPES.sub(replace, text)

    def match(self, shown: str, actual: str, where: str) -> None:
        pattern, groups = "", {}
        position = 0
        for shape in SHAPES.finditer(shown):
            pattern += re.escape(shown[position : shape.start()])
            position = shape.end()
            doc_id = shape["id"]
            if shape["time"]:
                pattern += TIME_PATTERN
            elif doc_id in self.actual:
                pattern += re.escape(self.actual[doc_id])
            elif doc_id in groups:
                pattern += f"(?P={groups[doc_id]})"
            else:
                groups[doc_id] = f"id{len(groups)}"
                pattern += f"(?P<{groups[doc_id]}>[0-9a-f]{{32}})"
        pattern += re.escape(shown[position:])
        found = re.fullmatch(pattern, actual)
        assert found, f"{where}: the page shows {shown!r}, the server sent {actual!r}"
        for doc_id, group in groups.items():
            taken = {v: k for k, v in self.actual.items()}.get(found[group])
            assert taken is None, (
                f"{where}: {doc_id} and {taken} are the same resource on the server"
            )
            self.actual[doc_id] = found[group]


def compare(shown: Any, actual: Any, ids: Ids, where: str) -> None:
    """The response must be what the page shows, bar the keys a page may omit."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: the server sent {actual!r}"
        unshown = actual.keys() - shown.keys() - OMITTABLE
        assert not unshown, f"{where}: the page does not show {sorted(unshown)}"
        for key, value in shown.items():
            assert key in actual, f"{where}: the server sent no {key!r}: {actual}"
            if key in ORDERED or not isinstance(value, list):
                compare(value, actual[key], ids, f"{where}.{key}")
            else:
                compare_unordered(value, actual[key], ids, f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), (
            f"{where}: the page shows {len(shown)} items, the server sent {actual!r}"
        )
        for index, (item, actual_item) in enumerate(zip(shown, actual, strict=True)):
            compare(item, actual_item, ids, f"{where}[{index}]")
    elif isinstance(shown, str) and isinstance(actual, str):
        ids.match(shown, actual, where)
    else:
        assert shown == actual, f"{where}: the page shows {shown!r}, server {actual!r}"


def compare_unordered(shown: list, actual: Any, ids: Ids, where: str) -> None:
    """A multi-valued attribute (RFC 7643 §2.4) is a set: its order is not kept."""
    assert isinstance(actual, list) and len(actual) == len(shown), (
        f"{where}: the page shows {len(shown)} items, the server sent {actual!r}"
    )

    def pair(shown_left: list, actual_left: list) -> bool:
        if not shown_left:
            return True
        for index, candidate in enumerate(actual_left):
            bound = dict(ids.actual)
            try:
                compare(shown_left[0], candidate, ids, where)
            except AssertionError:
                ids.actual = bound
                continue
            if pair(shown_left[1:], actual_left[:index] + actual_left[index + 1 :]):
                return True
            ids.actual = bound
        return False

    assert pair(shown, actual), f"{where}: the page shows {shown}, the server {actual}"


def encode_target(target: str) -> str:
    """The request target as sent: the page shows query values unencoded."""
    path, _, query = target.partition("?")
    assert path.startswith(f"{SITE_PREFIX}/"), f"{target}: not under {SITE_PREFIX}"
    if not query:
        return path
    parameters = [part.partition("=") for part in query.split("&")]
    encoded = "&".join(
        f"{name}={quote(value, safe=',')}" for name, _, value in parameters
    )
    return f"{path}?{encoded}"


def replay(client: Any, request: Message, response: Message, ids: Ids) -> None:
    line = REQUEST_LINE.fullmatch(request.first_line)
    target = encode_target(ids.substitute(line["target"], request.where))
    headers = {
        name: ids.substitute(value, request.where)
        for name, value in request.headers.items()
        if name.lower() != "host"
    }
    options: dict[str, Any] = {}
    if "Authorization" in headers:
        options["token"] = None
    if "Content-Type" in headers:
        options["content_type"] = headers.pop("Content-Type")
    body = (
        ids.substitute(request.body, request.where).encode() if request.body else None
    )
    reply = client.request(
        line["method"],
        target.removeprefix(SITE_PREFIX),
        body=body,
        headers=headers,
        **options,
    )

    where = f"{response.where} ({client.framework})"
    status = int(STATUS_LINE.fullmatch(response.first_line)["status"])
    assert reply.status == status, f"{where}: status {reply.status}: {reply.body!r}"
    for name, shown in response.headers.items():
        actual = reply.headers.get(name.lower())
        assert actual is not None, f"{where}: no {name} header in {reply.headers}"
        ids.match(shown, actual.replace(TEST_ROOT, SITE_ROOT), f"{where} {name}")
    if not response.body:
        assert reply.body == b"", f"{where}: the page shows no body, got {reply.body!r}"
        return
    actual_body = json.loads(reply.body.decode().replace(TEST_ROOT, SITE_ROOT))
    compare(json.loads(response.body), actual_body, ids, where)


PAGES_WITH_EXCHANGES = [page for page in PAGES if http_messages(page)]


@pytest.mark.parametrize("page", PAGES_WITH_EXCHANGES, ids=lambda page: page.stem)
def test_http_exchanges_are_true(page, client):
    demo.load_demo_data()
    ids = Ids()
    for request, response in exchanges(page):
        replay(client, request, response, ids)


def test_the_sizes_of_the_files_to_copy_are_true():
    """The first recipe's table: each "About N lines" within 15% of the files."""
    page = (DOCS / "add-scim-to-your-app.md").read_text()
    rows = re.findall(r"^\| [^|]+ \| (.+) \| (\d+) lines \|$", page, re.M)
    assert len(rows) >= 6, "the table of files to copy is gone"
    for files, shown in rows:
        paths = re.findall(r"`([\w/<>.]+\.py)`", files)
        for framework in ("flask", "fastapi", "django"):
            expanded = [ROOT / path.replace("<framework>", framework) for path in paths]
            if not all(path.is_file() for path in expanded):
                continue
            lines = sum(len(path.read_text().splitlines()) for path in expanded)
            assert abs(lines - int(shown)) <= 0.15 * int(shown), (files, lines)


def section_text(target: str) -> str:
    path, _, section = target.rpartition(":")
    text = (ROOT / path).read_text()
    return text[text.index(f"[start:{section}]") : text.index(f"[end:{section}]")]


def test_no_snippet_calls_a_private_helper_the_page_does_not_show():
    problems = []
    for page in PAGES:
        targets = [
            match["target"]
            for line in page.read_text().splitlines()
            if (match := SNIPPET.match(line))
        ]
        shown = "".join(section_text(target) for target in targets)
        defined = set(re.findall(r"def (_\w+)\(", shown))
        for target in targets:
            called = set(re.findall(r"(?<![\w])(_[a-z]\w*)\(", section_text(target)))
            if hidden := called - defined:
                problems.append(f"{page.name}: {target} calls {sorted(hidden)}")
    assert not problems, "\n".join(problems)
