"""The edit engine against the YAML test suite (issue 34): `BENCH_ONLY=yaml_suite`.

Every valid case of yaml/yaml-test-suite (../shared/corpus/yaml-test-suite), every scalar a path
can address set to 14 hard values, each result judged by PyYAML (pure and libyaml), ruamel.yaml
and eemeli's `yaml` under Node (1.2 and 1.1) as tests/yaml_suite.py defines it: right (the
edited scalar reads as exactly the new string, everything else as before, no byte outside it
changed), refused (a typed error), wrong, or a traceback. The test runs a fixed half of these;
this prints the exact rates of all of them, then of one pass per case setting every scalar at
once, then of a fixed 1 in 100 of the same edits on the real files of ../shared/corpus
(catalogs, manifests, values: slow to judge, every reader reads every whole output).
Target: 0 wrong, 0 tracebacks.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import yaml_suite  # noqa: E402


def _print(title: str, tally: yaml_suite.Tally, seconds: float) -> None:
    total = len(tally.outcomes) or 1
    print(f"== {title}: {len(tally.outcomes):,} edits in {seconds:.1f} s")
    for kind in ("right", "refused", "wrong", "traceback"):
        n = tally.count(kind)
        print(f"   {kind:<10} {n:>7,}  {100 * n / total:6.2f}%")
    reasons = collections.Counter(o.detail.split(": ", 1)[-1].split(" ", 1)[-1].split(";")[0][:70]
                                  for o in tally.of("refused"))
    for reason, n in reasons.most_common(5):
        print(f"   refused {n:>5,}: {reason}")
    if tally.of("wrong") or tally.of("traceback"):
        print(yaml_suite.report(tally, limit=10))


def bench_yaml_suite() -> None:
    if not yaml_suite.SUITE.is_dir():
        print(f"== yaml test suite: skipped ({yaml_suite.SUITE} is absent)")
        return
    readers = [*yaml_suite.python_readers()]
    if yaml_suite.node_available():
        readers += ["yaml-npm-1.2", "yaml-npm-1.1"]
    else:
        print("   (node or npm yaml missing: `make deps`; judged without eemeli's yaml)")
    print(f"   readers: {', '.join(readers)}")
    t = time.perf_counter()
    tally = yaml_suite.run()
    _print(f"yaml test suite: {len(yaml_suite.valid_cases())} valid cases x "
           f"{len(yaml_suite.HARD_VALUES)} values", tally, time.perf_counter() - t)
    t = time.perf_counter()
    multi = yaml_suite.run_multi()
    _print("yaml test suite, every addressable scalar of a case set in one pass", multi,
           time.perf_counter() - t)
    t = time.perf_counter()
    real = yaml_suite.run(sample=100, cases=yaml_suite.real_files())
    _print(f"real files: {len(yaml_suite.real_files())} files of ../shared/corpus, 1 edit in 100",
           real, time.perf_counter() - t)


if __name__ == "__main__":
    bench_yaml_suite()
