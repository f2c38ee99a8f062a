"""The malformed-dictionary corpus: each file gets its precise error, never a traceback.

Every `tests/unit/corpus/malformed/NN-name.yaml` starts with `# expect: PATH :: SUBSTRING`: loading
it must raise DictionaryError with a problem at exactly PATH whose message contains SUBSTRING.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from vnf_operator.cli.main import cli
from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import load_provider_file

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).parent / "corpus" / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (.*?) :: (.+)$", re.MULTILINE)


def _expectation(path: Path) -> tuple[str, str]:
    m = _EXPECT.search(path.read_text(encoding="utf-8"))
    assert m, f"{path.name} lacks an `# expect: PATH :: SUBSTRING` header"
    return m.group(1).strip(), m.group(2).strip()


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 40
    names = [f.name for f in FILES]
    assert all(re.match(r"^\d{2}-[a-z0-9-]+\.yaml$", n) for n in names), names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_malformed_dictionary_gets_its_precise_error(path: Path) -> None:
    want_path, want_text = _expectation(path)
    with pytest.raises(DictionaryError) as info:
        load_provider_file(path)
    problems = info.value.problems
    assert problems, "a DictionaryError must carry problems"
    assert any(p.path == want_path and want_text in p.message for p in problems), "\n".join(
        map(str, problems)
    )
    assert info.value.source == str(path)
    assert "Traceback" not in str(info.value)


def test_vnfctl_validate_reports_every_corpus_file_in_one_run() -> None:
    result = CliRunner().invoke(cli, ["validate", *map(str, FILES)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    for f in FILES:
        want_path, want_text = _expectation(f)
        prefix = f"{f}: {want_path}: " if want_path else f"{f}: "
        assert any(line.startswith(prefix) and want_text in line for line in lines), f.name
    assert "Traceback" not in result.output
