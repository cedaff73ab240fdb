"""Where every benchmark leaves its results: one JSON file per benchmark under bench/results/ (git-ignored)."""
import json, sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent/'results'

def save(name:str, report:dict) -> Path:
    "Write `report` as `bench/results/<name>.json` and return its path."
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS/f'{name}.json'
    path.write_text(json.dumps(report, indent=2) + '\n')
    return path

def finish(name:str, report:dict, problems:list[str]) -> int:
    "Save `report`, say where, list the `problems` on stderr, and return the exit code (1 if there are any)."
    print(f'results: {save(name, report)}')
    for p in problems: print(f'CHECK FAILED: {p}', file=sys.stderr)
    return 1 if problems else 0
