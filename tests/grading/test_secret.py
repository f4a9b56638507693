"""tpkit.grading.secret: the course's secret file. The basics (a new course gets 256 bits, mode 0600,
kept between runs; a 62-bit secret of an earlier version replaced; pin_secret refuses 12345) are in
tests/test_check_inputs.py; here the edges: the 128-bit boundary, unreadable contents, the atomic
write, and a link planted where the secret is written."""
import os
import stat

import pytest

from tpkit.grading import secret


def test_the_128_bit_boundary_is_kept_and_127_bits_replaced(tmp_path):
    path = tmp_path / secret.SECRET_FILE
    exactly = (1 << (secret.MIN_SECRET_BITS - 1)) + 12345
    path.write_text(f"{exactly}\n")
    assert secret.course_salt(tmp_path) == exactly
    short = (1 << (secret.MIN_SECRET_BITS - 2)) + 12345
    path.write_text(f"{short}\n")
    replaced = secret.course_salt(tmp_path)
    assert replaced != short and replaced.bit_length() == secret.SECRET_BITS


@pytest.mark.parametrize("text", ["", "   \n", "abc", "-" + "9" * 60, "1e300", "0x" + "f" * 64, "1" * 50 + " 2",
                                  "²" * 40, "٣" * 40])  # Unicode digits: str.isdigit says yes
def test_a_secret_file_that_is_not_a_decimal_number_is_replaced(tmp_path, text):
    (tmp_path / secret.SECRET_FILE).write_text(text)
    value = secret.course_salt(tmp_path)
    assert value.bit_length() == secret.SECRET_BITS
    assert (tmp_path / secret.SECRET_FILE).read_text() == f"{value}\n"
    assert stat.S_IMODE((tmp_path / secret.SECRET_FILE).stat().st_mode) == 0o600


def test_two_new_courses_get_different_secrets(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert secret.course_salt(tmp_path / "a") != secret.course_salt(tmp_path / "b")


def test_pinning_replaces_a_world_readable_secret_with_an_owner_only_one_and_leaves_no_part_file(tmp_path):
    path = tmp_path / secret.SECRET_FILE
    path.write_text("1")
    os.chmod(path, 0o644)
    value = (1 << 200) + 3
    assert secret.pin_secret(tmp_path, value) == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == f"{value}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [secret.SECRET_FILE]


@pytest.mark.parametrize("value", [0, 1, (1 << 127) - 1, -(1 << 200)])
def test_pin_secret_refuses_short_values_and_writes_nothing(tmp_path, value):
    with pytest.raises(ValueError, match="at least 128 bits"):
        secret.pin_secret(tmp_path, value)
    assert not list(tmp_path.iterdir())


def test_a_link_planted_at_the_part_file_is_not_followed(tmp_path):
    """Someone who can write the course folder cannot make the grader write the secret elsewhere."""
    target = tmp_path / "ailleurs"
    target.write_text("avant")
    (tmp_path / (secret.SECRET_FILE + ".part")).symlink_to(target)
    with pytest.raises(OSError):
        secret.pin_secret(tmp_path, 1 << 200)
    assert target.read_text() == "avant" and not (tmp_path / secret.SECRET_FILE).exists()
