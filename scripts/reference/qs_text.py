"""qs's documented reading of a registry text collection, shared by the reference and benchmark
scripts: the files matching PATTERN, in byte order of their names, decoded as UTF-8 (invalid
bytes replaced), joined with a blank line; reading stops once MINIMUM characters are there."""
import glob
import os


def read_collection(folder: str, pattern: str = "*_gut.txt", minimum: int | None = None) -> str:
    files = sorted(glob.glob(os.path.join(folder, pattern)), key=lambda p: os.path.basename(p).encode())
    text = ""
    for path in files:
        with open(path, "rb") as f:
            part = f.read().decode("utf-8", errors="replace")
        text = part if not text else text + "\n\n" + part
        if minimum is not None and len(text) > minimum:
            break
    return text
