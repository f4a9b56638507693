"""A student's JupyterLab is in French (issue #26, item 5): a release notebook opened in JupyterLab, in
headless Chromium, with the language setting the README's install commands write (`overrides.json` in the
environment's `share/jupyter/lab/settings/`; the language pack is pinned in requirements-etudiant.txt and
requirements.txt), shows the French menus, and every menu path the notebooks name in French
(« *Noyau → Redémarrer le noyau et exécuter toutes les cellules…* ») is a menu and an item of that menu
(letter case aside). The screenshots of the opened menus are left in the test's tmp_path."""
import importlib.metadata
import json
import re
import shutil
from pathlib import Path

import headless
import pytest

from tpkit import assignments, paths, release, submissions

MAIN = "tp_reseaux_neurones"  # the course's main assignment

TOKEN = "tpkit-etudiant"
#: JupyterLab's menus, in French (jupyterlab-language-pack-fr-fr: « Exécution », not « Exécuter ») and in English
FRENCH_MENUS = ("Fichier", "Édition", "Affichage", "Exécution", "Noyau", "Onglets", "Paramètres", "Aide")
ENGLISH_MENUS = ("File", "Edit", "View", "Run", "Kernel", "Tabs", "Settings", "Help")
#: « *Menu → Item* » in a notebook's Markdown (the arrow path a student is told to follow)
_MENU_PATH = re.compile(r"(?<!\*)\*([A-ZÉ][\w ]{1,20}) → ([^*`]+?)\*(?!\*)")


def readme_overrides() -> dict:
    """The settings the README's Linux/macOS commands write into the student's environment."""
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"echo '(\{.*\})' > tp-env/share/jupyter/lab/settings/overrides\.json", readme)
    assert found, "the README no longer writes overrides.json"
    return json.loads(found.group(1))


def menu_paths(assignment: str) -> list[tuple[str, str]]:
    text = "\n".join(c.source for c in submissions.read(paths.release_notebook(assignment)).cells
                     if c.cell_type == "markdown")
    return [(" ".join(a.split()), " ".join(b.split())) for a, b in _MENU_PATH.findall(text)]


def student_jupyterlab(folder: Path, settings: Path, log: Path):
    """`jupyter lab` started in the student's folder, its application settings folder (where the README
    puts overrides.json) and user settings in temporary folders (no developer's own setting counts)."""
    env = dict(release.nbgrader_env(), JUPYTERLAB_SETTINGS_DIR=str(settings / "user"),
               JUPYTERLAB_WORKSPACES_DIR=str(settings / "workspaces"), LANG="C.UTF-8", LANGUAGE="")
    return headless.jupyter_lab(folder, log, TOKEN, args=[f"--LabApp.app_settings_dir={settings / 'app'}"], env=env)


_MENU_BOX = """(() => {{
  const item = [...document.querySelectorAll('.lm-MenuBar-item')]
    .find(e => e.querySelector('.lm-MenuBar-itemLabel').textContent.trim() === {label});
  const r = item.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
}})()"""


_MENU_ITEMS = ("[...document.querySelectorAll('.lm-Menu:not(.lm-MenuBar) .lm-Menu-itemLabel')]"
               ".map(e => e.textContent.trim()).filter(t => t)")


@pytest.mark.slow
@pytest.mark.skipif(headless.CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_release_notebook_opens_in_french_jupyterlab_and_its_menu_paths_exist(tmp_path):
    packs = {e.name for e in importlib.metadata.entry_points(group="jupyterlab.languagepack")}
    assert "fr_FR" in packs, "jupyterlab-language-pack-fr-fr is missing: `make` installs requirements.txt"
    assignment = MAIN
    folder = tmp_path / "etudiant"
    shutil.copytree(paths.release_dir(assignment), folder)
    settings = tmp_path / "settings"
    (settings / "app").mkdir(parents=True)
    (settings / "app" / "overrides.json").write_text(json.dumps(readme_overrides()), encoding="utf-8")
    notebook = paths.notebook_name(assignment)
    named = [(menu, item) for a in assignments.names() for menu, item in menu_paths(a)]
    assert not [m for m, _ in named if m not in FRENCH_MENUS + ENGLISH_MENUS], named  # menus the interface has
    french = [(menu, item) for menu, item in named if menu in FRENCH_MENUS]
    assert french, named
    with student_jupyterlab(folder, settings, tmp_path / "jupyterlab.log") as url, \
            headless.browser(tmp_path / "profile", width=1400, height=900) as page:
        page.goto(f"{url}/lab/tree/{notebook}?token={TOKEN}")
        page.wait("document.querySelectorAll('.jp-Notebook .jp-Cell').length > 0 && "
                  "document.querySelectorAll('.lm-MenuBar-itemLabel').length > 5", timeout=180)
        menubar = page.eval("[...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.textContent.trim())")
        assert set(FRENCH_MENUS) <= set(menubar), menubar
        items = {}
        for label in sorted({menu for menu, _ in french}):
            x, y = page.eval(_MENU_BOX.format(label=json.dumps(label)))
            page.click(x, y)  # opens the menu
            page.wait(f"{_MENU_ITEMS}.length > 3", timeout=30)
            items[label] = page.eval(_MENU_ITEMS)
            page.screenshot(tmp_path / f"menu_{label}.png")
            page.click(x, y)  # closes it
            page.wait(f"{_MENU_ITEMS}.length == 0", timeout=30)
    # compared without case: the language pack writes « Redémarrer le noyau et Exécuter toutes les cellules… »
    missing = [(menu, item) for menu, item in french
               if item.casefold() not in [i.casefold() for i in items.get(menu, [])]]
    assert not missing, (missing, items)
