"""Repository paths the package tests use (a module of its own, so that running these tests in
one pytest call with tests/interop, whose conftest is also called `conftest`, cannot mix them)."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
FRACAST = FIXTURES / "models" / "fracast" / "model.safetensors"
