"""A CSV reader over bytes that keeps each field's byte span, so that Moodle's worksheet can be filled
by splicing two fields per row and keeping every other byte (BOM, line endings, quoting, encoding) as
Moodle or a spreadsheet wrote it: the ``csv`` module gives values, not where they were."""
from __future__ import annotations

from dataclasses import dataclass

@dataclass
class Field:
    start: int  # byte span of the raw field, quotes included
    end: int
    quoted: bool
    raw_value: bytes  # unquoted content


@dataclass
class Record:
    number: int  # 1-based record number (header = 1)
    fields: list[Field]


def parse_csv(data: bytes, start: int, delim: int) -> list[Record]:
    """RFC 4180 parser over bytes that keeps each field's byte span (CSV syntax is ASCII, so this is
    safe for UTF-8 and single-byte encodings). Lenient like Excel: a quote inside an unquoted field is
    data, text after a closing quote is kept."""
    QUOTE, CR, LF = 0x22, 0x0D, 0x0A
    records: list[Record] = []
    i, n = start, len(data)
    while i < n:
        fields: list[Field] = []
        while True:
            fstart = i
            if i < n and data[i] == QUOTE:
                i += 1
                buf = bytearray()
                while True:
                    if i >= n:
                        raise ValueError(f"unterminated quoted field starting at byte {fstart}")
                    c = data[i]
                    if c == QUOTE:
                        if i + 1 < n and data[i + 1] == QUOTE:
                            buf.append(QUOTE)
                            i += 2
                            continue
                        i += 1
                        break
                    buf.append(c)
                    i += 1
                while i < n and data[i] not in (delim, CR, LF):
                    buf.append(data[i])
                    i += 1
                fields.append(Field(fstart, i, True, bytes(buf)))
            else:
                while i < n and data[i] not in (delim, CR, LF):
                    i += 1
                fields.append(Field(fstart, i, False, data[fstart:i]))
            if i < n and data[i] == delim:
                i += 1
                continue
            break
        if i < n and data[i] == CR:
            i += 1
        if i < n and data[i] == LF:
            i += 1
        records.append(Record(len(records) + 1, fields))
    return records


def sniff_delimiter(data: bytes, start: int) -> int:
    """Delimiter of the header line: the most frequent of , ; TAB outside quotes (default ,)."""
    counts = {ord(","): 0, ord(";"): 0, ord("\t"): 0}
    in_quotes = False
    for c in data[start:]:
        if c == 0x22:
            in_quotes = not in_quotes
        elif not in_quotes and c in (0x0A, 0x0D):
            break
        elif not in_quotes and c in counts:
            counts[c] += 1
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else ord(",")


def encode_field(value: str, encoding: str, delim: str, force_quotes: bool) -> bytes:
    needs = force_quotes or any(c in value for c in (delim, '"', "\r", "\n")) or value != value.strip()
    text = '"' + value.replace('"', '""') + '"' if needs else value
    return text.encode(encoding, errors="xmlcharrefreplace" if encoding != "utf-8" else "strict")
