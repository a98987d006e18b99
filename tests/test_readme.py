"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert commands[0].endswith("internalize reproduce all")
    assert commands[1] in ci  # .ci/run runs exactly the README's test command
