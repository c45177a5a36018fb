"""Progress lines: throttled to the interval, with bytes, percent and throughput."""

from em_assets.transfer.progress import MIB, Progress, human_bytes


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


def test_reports_at_intervals_with_percent_and_rate():
    now = [0.0]
    log = Lines()
    progress = Progress("f.tif", 100 * MIB, log, interval_s=10, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 1
        progress.advance(MIB)
    progress.finish()
    assert len(log.lines) == 11  # one per 10 s of the 100 s, plus the final line
    assert log.lines[0] == "f.tif: 10.0 MiB of 100.0 MiB (10%) at 1.0 MB/s"
    assert log.lines[-1].startswith("f.tif: 100.0 MiB of 100.0 MiB (100%)")
    assert log.lines[-1].endswith("done")


def test_unknown_total_reports_bytes_only():
    log = Lines()
    progress = Progress("f.tif", None, log, interval_s=0, clock=lambda: 1.0)
    progress.advance(2 * MIB)
    assert "2.0 MiB (size unknown)" in log.lines[0]


def test_sizes_read_like_people_write_them():
    assert human_bytes(512) == "512 bytes"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
