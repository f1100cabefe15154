"""Reading CSV and JSON Lines files as a stream of records. Pure functions on binary file objects, no DB.

``inspect`` looks at the beginning of a file (its first megabyte) and finds its format, encoding, delimiter and
columns, or the problems that stop an import: an empty file, a file that is not UTF-8 (the user then chooses
Latin-1 or Windows-1252: we do not guess silently), no header line, duplicate or blank column names.

``read_rows`` streams the whole file, one row at a time: memory stays flat whatever the file's size. Every line is
read with a bounded ``readline`` so that even a file without line breaks cannot be loaded whole. A row that cannot
be read (a wrong number of columns, an oversize row, bytes that are not valid in the file's encoding, a line that
is not a JSON object) comes out with its error, so the caller can report it and go on with the next one.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "latin-1": "Latin-1 (ISO-8859-1)",
    "cp1252": "Windows-1252",
}
DELIMITERS = {",": "Comma (,)", ";": "Semicolon (;)", "\t": "Tab", "|": "Pipe (|)"}
FORMATS = ("csv", "jsonl")

SAMPLE_BYTES = 1024 * 1024
# A row may be at most this long (characters), like one event of the tracking API (32 KB).
MAX_ROW_CHARS = 32 * 1024
RAW_IN_REPORT = 2000  # characters of a bad row kept in the error report
JSON_COLUMNS_SAMPLE = 200  # JSON Lines: the columns are the paths found in the first rows

_LOOKS_LIKE_DATA = re.compile(
    r"^\s*(?:[^@\s]+@[^@\s]+\.[^@\s]+"          # an email address
    r"|[+-]?\d+(?:[.,]\d+)?"                    # a number
    r"|\d{4}-\d{2}-\d{2}(?:[T ][\d:.+\-Z]*)?"   # an ISO date
    r"|\d{1,2}[./]\d{1,2}[./]\d{2,4}"           # a local date
    r")\s*$"
)
_SURROGATES = re.compile("[\udc80-\udcff]")


@dataclass
class Problem:
    code: str
    message: str
    blocking: bool = True

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "blocking": self.blocking}


@dataclass
class Inspection:
    format: str = "csv"
    encoding: str = ""
    delimiter: str = ""
    columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(problem.blocking for problem in self.problems)


@dataclass(slots=True)
class Row:
    """A row of the file: ``line`` is where it starts (the header is line 1), ``record`` the fields by column
    (None when the row cannot be read, then ``error`` says why)."""

    line: int
    record: dict | None
    raw: str
    error: str = ""
    column: str = ""


class FileProblem(ValueError):
    """The file as a whole cannot be read (the import fails with this message)."""


# --- format, encoding, delimiter --------------------------------------------------------------------------------

def guess_format(filename: str, head: bytes) -> str:
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.txt")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "csv"


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}, byte {offset + 1}"


def detect_encoding(head: bytes, complete: bool) -> tuple[str, Problem | None]:
    """The encoding of a file that starts with ``head`` (``complete``: the whole file), or a problem that asks the
    user to choose one."""
    if head.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8-sig", head[len(codecs.BOM_UTF8):]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "", Problem("encoding", "The file is UTF-16 encoded. Save it as UTF-8 (in Excel: \"CSV UTF-8\") "
                                       "and upload it again.")
    else:
        encoding, body = "utf-8", head
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(body, final=complete)
    except UnicodeDecodeError as error:
        offset = error.start + (len(head) - len(body))
        byte = head[offset:offset + 1].hex().upper()
        return "", Problem(
            "encoding",
            f"The file is not UTF-8: the byte 0x{byte} at {_position(head, offset)} is not valid UTF-8. "
            "Choose the file's encoding (Latin-1 or Windows-1252 are common for files saved by older Excel "
            "versions), or save it as UTF-8 and upload it again.")
    return encoding, None


def detect_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        counts = {delimiter: lines[0].count(delimiter) for delimiter in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _header_problems(header: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    if not header or all(not name.strip() for name in header):
        return [Problem("no_header", "The first line is empty. The first line must name the columns.")]
    blank = [str(i + 1) for i, name in enumerate(header) if not name.strip()]
    if blank:
        problems.append(Problem("blank_column", f"Column {', '.join(blank)} has no name in the header line. "
                                                "Every column needs a name."))
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower()
        if not key:
            continue
        if key in seen:
            problems.append(Problem(
                "duplicate_column",
                f"The header names the column {name.strip()!r} twice (columns {seen[key] + 1} and {index + 1}). "
                "Column names must be unique."))
        else:
            seen[key] = index
    data_like = [name for name in header if name.strip() and _LOOKS_LIKE_DATA.match(name)]
    if data_like and len(data_like) * 2 >= len([n for n in header if n.strip()]) or any("@" in n for n in data_like):
        examples = ", ".join(repr(value) for value in data_like[:3])
        problems.append(Problem(
            "no_header", f"The first line looks like data, not column names ({examples}). The file needs a "
                         "header line that names the columns."))
    return problems


def flatten_paths(value, prefix: str = "", out: dict | None = None) -> dict:
    """The dotted paths of a JSON object's leaves (objects are walked, lists are kept whole)."""
    out = {} if out is None else out
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flatten_paths(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif prefix:
        out.setdefault(prefix, value)
    return out


def leaf_paths(paths) -> list[str]:
    """The paths in order, without those that are only the parent of others (an object empty in one record and
    filled in another)."""
    paths = list(paths)
    parents = {path[:index] for path in paths for index, char in enumerate(path) if char == "."}
    return [path for path in paths if path not in parents]


def inspect(raw, filename: str, *, encoding: str = "", delimiter: str = "", format: str = "") -> Inspection:
    """Look at the beginning of a binary file object; ``encoding``/``delimiter``/``format`` override detection."""
    raw.seek(0)
    head = raw.read(SAMPLE_BYTES + 1)
    complete = len(head) <= SAMPLE_BYTES
    head = head[:SAMPLE_BYTES]
    inspection = Inspection(format=format or guess_format(filename, head))
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        inspection.problems.append(Problem("empty", "The file is empty: it has no header line and no rows."))
        return inspection
    if encoding:
        if encoding not in ENCODINGS:
            inspection.problems.append(Problem("encoding", f"Unknown encoding {encoding!r}; one of "
                                                           f"{', '.join(ENCODINGS)}."))
            return inspection
        if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        inspection.encoding = encoding
    else:
        inspection.encoding, problem = detect_encoding(head, complete)
        if problem:
            inspection.problems.append(problem)
            return inspection
    text = head.decode(inspection.encoding, errors="replace")
    if not complete:
        text = text.rsplit("\n", 1)[0]  # the sample may end in the middle of a row
    if inspection.format == "jsonl":
        _inspect_jsonl(text, inspection)
    else:
        _inspect_csv(text, delimiter, inspection)
    return inspection


def _inspect_csv(text: str, delimiter: str, inspection: Inspection) -> None:
    if delimiter and delimiter not in DELIMITERS:
        inspection.problems.append(Problem("delimiter", f"Unknown delimiter {delimiter!r}; one of comma, "
                                                        "semicolon, tab or pipe."))
        return
    inspection.delimiter = delimiter or detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=inspection.delimiter)
    try:
        header = next(reader, [])
    except csv.Error as error:
        inspection.problems.append(Problem("no_header", f"The header line cannot be read: {error}."))
        return
    inspection.columns = [name.strip() for name in header]
    inspection.problems.extend(_header_problems(header))
    if inspection.ok and not any(row for row in reader):
        inspection.problems.append(Problem("no_rows", "The file has a header line but no rows.", blocking=False))


def _inspect_jsonl(text: str, inspection: Inspection) -> None:
    stripped = text.lstrip()
    if stripped.startswith("["):
        inspection.problems.append(Problem(
            "json_array", "The file is a JSON array, not JSON Lines. JSON Lines has one JSON object per line."))
        return
    paths: dict[str, None] = {}
    rows = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rows += 1
        if rows > JSON_COLUMNS_SAMPLE:
            break
        try:
            value = json.loads(line)
        except ValueError as error:
            if rows == 1:
                inspection.problems.append(Problem(
                    "not_json", f"Line {line_number} is not JSON ({error}). JSON Lines has one JSON object per "
                                "line."))
                return
            continue
        if isinstance(value, dict):
            for path in flatten_paths(value):
                paths.setdefault(path, None)
        elif rows == 1:
            inspection.problems.append(Problem(
                "not_json", f"Line {line_number} is a JSON {type(value).__name__}, not an object. JSON Lines "
                            "for an import has one JSON object per line."))
            return
    inspection.columns = leaf_paths(paths)
    if not rows:
        inspection.problems.append(Problem("no_rows", "The file has no rows.", blocking=False))


# --- reading rows ------------------------------------------------------------------------------------------------

class _BoundedLines:
    """Lines of a text stream, each read with a bounded readline: a line longer than ``limit`` is skipped to its
    end (never held whole) and stands as an empty line, with ``oversize`` set to its length."""

    def __init__(self, text, limit: int):
        self.text = text
        self.limit = limit
        self.oversize = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.limit + 1)
        if not line:
            raise StopIteration
        if len(line) > self.limit and line[-1] not in "\r\n":
            size = len(line)
            while True:
                more = self.text.readline(65536)
                size += len(more.rstrip("\r\n"))
                if not more or more[-1] in "\r\n":
                    break
            self.oversize = size
            return "\n"
        return line


def _truncate(text: str) -> str:
    return text if len(text) <= RAW_IN_REPORT else text[:RAW_IN_REPORT] + "…"


def printable(text: str) -> str:
    """Text read with surrogateescape, with the undecodable bytes written as \\xNN (for reports and previews)."""
    if not _SURROGATES.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_raw(fields: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(fields)
    return _truncate(printable(out.getvalue()))


def _bad_bytes(value: str, encoding: str) -> str:
    match = _SURROGATES.search(value)
    byte = f"0x{ord(match.group()) - 0xDC00:02X}" if match else "?"
    return f"the byte {byte} is not valid {ENCODINGS.get(encoding, encoding)}; choose the file's encoding"


def open_text(raw, encoding: str):
    """The binary file as text. Undecodable bytes are kept as surrogates, so that one bad row does not stop the
    file; read_rows reports such a row."""
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors="surrogateescape", newline="")


def read_rows(raw, *, format: str, encoding: str, delimiter: str = ",", columns: list[str] | None = None,
              max_row_chars: int = MAX_ROW_CHARS) -> Iterator[Row]:
    """Every row of the file, in order, each with its record or its error. Blank lines are skipped."""
    text = open_text(raw, encoding)
    try:
        if format == "jsonl":
            yield from _jsonl_rows(text, encoding, max_row_chars)
        else:
            yield from _csv_rows(text, encoding, delimiter or ",", columns, max_row_chars)
    finally:
        release_text(text)


def release_text(text) -> None:
    """Let go of the text wrapper without closing the caller's binary file (it may be closed already)."""
    with contextlib.suppress(ValueError):
        text.detach()


def _csv_rows(text, encoding: str, delimiter: str, columns: list[str] | None, max_row_chars: int) -> Iterator[Row]:
    lines = _BoundedLines(text, max_row_chars)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("The file is empty: it has no header line and no rows.") from None
    except csv.Error as error:
        raise FileProblem(f"The header line cannot be read: {error}.") from None
    header = [name.strip() for name in header]
    if columns is not None and header != list(columns):
        raise FileProblem("The file's header line does not match the columns of the mapping "
                          f"(expected {len(columns)} columns: {', '.join(columns[:8])}).")
    if lines.oversize:
        raise FileProblem(f"The header line is {lines.oversize:,} characters long; the limit is {max_row_chars:,}.")
    width = len(header)
    previous_line = reader.line_num
    while True:
        start = previous_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            previous_line = reader.line_num
            lines.oversize = 0
            message = str(error)
            if "field larger than field limit" in message:
                message = f"the row is longer than the limit of {max_row_chars:,} characters"
            yield Row(start, None, "", f"the row cannot be read as CSV: {message}")
            continue
        previous_line = reader.line_num
        if lines.oversize:
            size, lines.oversize = lines.oversize, 0
            yield Row(start, None, _csv_raw(fields, delimiter) if fields else "",
                      f"the row is {size:,} characters long; the limit is {max_row_chars:,}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip() and width != 1):
            continue  # a blank line
        if len(fields) != width:
            yield Row(start, None, _csv_raw(fields, delimiter),
                      f"expected {width} columns, found {len(fields)}")
            continue
        if sum(map(len, fields)) > max_row_chars:
            yield Row(start, None, _csv_raw(fields, delimiter),
                      f"the row is {sum(map(len, fields)):,} characters long; the limit is {max_row_chars:,}")
            continue
        record = dict(zip(header, fields, strict=True))
        try:
            "".join(fields).encode("utf-8")
        except UnicodeEncodeError:
            bad = next(name for name, value in record.items() if _SURROGATES.search(value))
            yield Row(start, None, _csv_raw(fields, delimiter), _bad_bytes(record[bad], encoding), column=bad)
            continue
        yield Row(start, record, "")


def _jsonl_rows(text, encoding: str, max_row_chars: int) -> Iterator[Row]:
    lines = _BoundedLines(text, max_row_chars)
    for number, line in enumerate(lines, start=1):
        if lines.oversize:
            size, lines.oversize = lines.oversize, 0
            yield Row(number, None, "", f"the line is {size:,} characters long; the limit is {max_row_chars:,}")
            continue
        if not line.strip():
            continue
        if _SURROGATES.search(line):
            yield Row(number, None, _truncate(printable(line.rstrip("\r\n"))), _bad_bytes(line, encoding))
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            yield Row(number, None, _truncate(line.rstrip("\r\n")), f"not valid JSON: {error}")
            continue
        if not isinstance(value, dict):
            yield Row(number, None, _truncate(line.rstrip("\r\n")),
                      f"a line must be a JSON object, not a JSON {type(value).__name__}")
            continue
        yield Row(number, value, "")


def raw_of(row: Row, *, format: str, delimiter: str, record: dict | None = None) -> str:
    """The raw text of a row for the error report (rows that were read but failed mapping)."""
    if row.raw:
        return row.raw
    record = record if record is not None else row.record
    if record is None:
        return ""
    if format == "jsonl":
        return _truncate(json.dumps(record, ensure_ascii=False))
    return _csv_raw(list(record.values()), delimiter)
