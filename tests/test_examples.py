"""The bundled example submissions (tpkit.examples), every assignment's."""
from tpkit import assignments, examples


def test_example_submissions_in_sync():
    """`python -m tpkit.examples` writes exactly what is in examples/submissions/ (every assignment's)."""
    built = {a: examples.build(assignment=a) for a in examples.assignments_with_examples()}
    assert set(examples.assignments_with_examples()) == set(assignments.names())
    on_disk = {p.relative_to(examples.EXAMPLES_DIR).as_posix()
               for p in examples.EXAMPLES_DIR.rglob("*") if p.is_file()}
    wanted = {f"{s}/{a}/{name}" for a in built for s, (name, _) in built[a].items()}
    assert on_disk == wanted, "run: python -m tpkit.examples"
    for a in built:
        for student, (name, data) in built[a].items():
            assert (examples.EXAMPLES_DIR / student / a / name).read_bytes() == data, \
                f"{student}/{a} is out of date: run python -m tpkit.examples"
