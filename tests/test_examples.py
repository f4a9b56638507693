"""The bundled example submissions (tpkit.examples)."""
from tpkit import examples, paths


def test_example_submissions_in_sync():
    """`python -m tpkit.examples` writes exactly what is in examples/submissions/."""
    built = examples.build()
    on_disk = {p.relative_to(examples.EXAMPLES_DIR).as_posix()
               for p in examples.EXAMPLES_DIR.rglob("*") if p.is_file()}
    wanted = {f"{s}/{paths.ASSIGNMENT}/{name}" for s, (name, _) in built.items()}
    assert on_disk == wanted, "run: python -m tpkit.examples"
    for student, (name, data) in built.items():
        assert (examples.EXAMPLES_DIR / student / paths.ASSIGNMENT / name).read_bytes() == data, \
            f"{student} is out of date: run python -m tpkit.examples"
