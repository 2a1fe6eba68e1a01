"""What Python's zipfile reads from an archive, in the form tests/zipdump
prints what skopsfs reads: one line per member name, "NAME SIZE SHA256",
sorted, NAME being the UTF-8 bytes of zipfile's name with bytes outside
printable ASCII (and the backslash) written \\xNN. A name zipfile lists twice
is read once, through NameToInfo, as zf.read(name) does: the last wins.

Also the small zip writer the case generator and the mutation test share:
fixed timestamps, so that the same input always gives the same bytes."""
import hashlib
import struct
import subprocess
import zipfile
import zlib

LOCAL, CENTRAL, END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
END64, LOCATOR64 = b"PK\x06\x06", b"PK\x06\x07"
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
UTF8_FLAG = 0x800
DOS_DATE = 0x21  # 1980-01-01


def escape(name):
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else "\\x%02x" % b for b in name)


def line(name, data):
    return f"{escape(name)} {len(data)} {hashlib.sha256(data).hexdigest()}"


def python_reading(path):
    """(sorted lines, None) or (None, "refused: ExceptionType: message")."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = dict.fromkeys(zf.namelist())
            return sorted(line(n.encode("utf-8", "surrogatepass"), zf.read(n)) for n in names), None
    except Exception as e:  # any failure is a refusal, as skops would fail
        return None, f"refused: {type(e).__name__}: {e}"


def skopsfs_reading(zipdump, path, timeout=30):
    """(sorted lines, None) or (None, "refused: ...") from tests/zipdump.
    A crash or a hang is neither: it raises."""
    r = subprocess.run([zipdump, path], capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    if r.returncode == 1 and out.startswith("refused: ") and out.count("\n") == 1:
        return None, out.strip()
    if r.returncode != 0:
        raise RuntimeError(f"zipdump exited {r.returncode}: {out[-300:]} {r.stderr[-300:]!r}")
    return out.splitlines(), None


def agree(ours, python):
    """skopsfs refused, or both read the same names with the same bytes."""
    return ours[0] is None or (python[0] is not None and ours[0] == python[0])


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class Member:
    """One member as written: the fields of both headers, each of which a
    case may forge. PAYLOAD is what lies in the archive (compressed or not)."""

    def __init__(self, name, data, method=STORED, *, flags=0, extra=b"", comment=b""):
        self.name = name if isinstance(name, bytes) else name.encode()
        self.local_name = self.name
        self.method = method
        self.payload = data if method == STORED else deflate(data)
        self.crc = zlib.crc32(data)
        self.size = len(data)
        self.comp_size = len(self.payload)
        self.flags = flags
        self.extra = extra
        self.local_extra = extra
        self.comment = comment

    def local(self):
        return struct.pack("<4s5H3L2H", LOCAL, 20, self.flags, self.method, 0, DOS_DATE, self.crc,
                           self.comp_size, self.size, len(self.local_name),
                           len(self.local_extra)) + self.local_name + self.local_extra + self.payload

    def central(self, offset):
        return struct.pack("<4s6H3L5H2L", CENTRAL, 20, 20, self.flags, self.method, 0, DOS_DATE,
                           self.crc, self.comp_size, self.size, len(self.name), len(self.extra),
                           len(self.comment), 0, 0, 0, offset) + self.name + self.extra + self.comment


def locals_of(members, start=0):
    """The local headers and data of MEMBERS laid out from file offset START:
    (bytes, offsets)."""
    blob, offsets = b"", []
    for m in members:
        offsets.append(start + len(blob))
        blob += m.local()
    return blob, offsets


def directory(members, offsets, shift=0):
    return b"".join(m.central(o - shift) for m, o in zip(members, offsets))


def end_record(count, cd_size, cd_offset, comment=b""):
    return struct.pack("<4s4H2LH", END, 0, 0, count, count, cd_size, cd_offset,
                       len(comment)) + comment


def end_record64(count, cd_size, cd_offset):
    return struct.pack("<4sQ2H2L4Q", END64, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)


def locator64(record_offset):
    return struct.pack("<4sLQL", LOCATOR64, 0, record_offset, 1)


def archive(members, comment=b""):
    blob, offsets = locals_of(members)
    cd = directory(members, offsets)
    return blob + cd + end_record(len(members), len(cd), len(blob), comment)
