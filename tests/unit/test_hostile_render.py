"""Issue 11, class 1: data rendered into Ansible YAML, Dockerfiles and shell lines is inert.

Hypothesis puts hostile strings (Jinja calling lookup('pipe', ...), every kind of line
break, controls, NUL, '..', YAML-typed spellings such as "0644" or "") and wrong types
(lists, huge and negative numbers, 1e30) into every field of the template model that
reaches a renderer.  Each renderer must then either refuse the template with a RenderError
of one sentence, or emit output in which the value is inert:

* task files and role files, loaded by Ansible's own loader as trusted template text (as
  include_tasks and roles load them), give back every value from the template equal to the
  input and NOT trusted as template; only the renderer's own Expr strings are trusted;
* a Dockerfile holds only the instructions the renderer writes, one per line;
* shell scripts (setup.sh, maintainer scripts) and deb822 control data: no value starts a
  new line, and every line splits into whole shell words by itself.
"""

import copy
import re
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.parsing.utils.yaml import from_yaml
from ansible.template import is_trusted_as_template, trust_as_template

from ansible_collections.mo.fleet.plugins.filter import render as render_filters
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._common import inert_yaml
from ansible_collections.mo.fleet.plugins.module_utils._common.inert_yaml import Expr

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

from test_render import apt_template

PWN = "{{ lookup('pipe', 'touch /tmp/mo-fleet-pwned') }}"
ATTACKS = [
    PWN, "{% for x in range(9) %}x{% endfor %}", "{# c #}", "{{", "}}", "${HOME}", "$(id)", "`id`",
    "a\nb", "a\rb", "a\r\nb", "a\u2028b", "a\u2029b", "a\x85b", "a\x1cb", "a\x0bb", "a\x0cb", "a\x00b",
    "..", "../..", "/..", "0644", "", "yes", "no", "null", "~", "1e30", "0x1c", "12\n", "2001-01-01",
    "- x", "x: y", "#x", "!unsafe x", "'", '"', "\\", "\t", "\ufeff", "\U0001f600", "é",
    "\nRUN touch /pwned", "\nFROM scratch", "\nDepends: evil", "\n\nPackage: evil",
    "x; touch /pwned", "x' ; touch /pwned; '", "nginx\n", "1.0\n", "amd64\n", "x.service\nRUN id",
]
HOSTILE = st.one_of(
    st.sampled_from(ATTACKS),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(["", "/etc/", "x", "nginx", "1.0"]),
              st.sampled_from(ATTACKS), st.sampled_from(["", "x", ".service", "\n", PWN])),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
WRONG = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.just(1e30), st.just(-1),
                  st.just(2 ** 32), st.lists(st.integers(0, 3), max_size=2), st.just({"a": PWN}), HOSTILE)
ACCOUNT_STATE = st.dictionaries(st.sampled_from(["uid", "gid", "gecos", "home", "shell", "system", "name", "GID"]),
                                WRONG, max_size=5)


def _op(doc, op, index=0):
    return doc["operations"][op][index]


# every field of the model that reaches a renderer: (name, setter(doc, value))
FIELDS = {
    "file path": lambda d, v: _op(d, "files_created").update(path="/usr/local/bin/" + v),
    "file path (deleted)": lambda d, v: _op(d, "files_deleted").update(path="/etc/" + v),
    "directory path": lambda d, v: _op(d, "directories_created").update(path="/usr/local/share/" + v),
    "symlink path": lambda d, v: _op(d, "symlinks_created").update(path="/usr/local/bin/" + v),
    "symlink target": lambda d, v: _op(d, "symlinks_created").update(target=v),
    "former symlink target": lambda d, v: d["operations"]["symlinks_modified"].append(
        {"path": "/usr/local/bin/old", "type": "symlink", "target": "a", "before": {"target": v}}),
    "file owner": lambda d, v: _op(d, "files_created").update(owner=v),
    "file group": lambda d, v: _op(d, "files_created").update(group=v),
    "file uid": lambda d, v: _op(d, "files_created").update(owner=None, uid=v),
    "file mode": lambda d, v: _op(d, "files_created").update(permissions=v),
    "permission change after": lambda d, v: _op(d, "permissions_changed").update(after={"owner": v, "group": v}),
    "user gecos": lambda d, v: _op(d, "users_created").update(gecos=v),
    "user home": lambda d, v: _op(d, "users_created").update(home=v),
    "user shell": lambda d, v: _op(d, "users_created").update(shell=v),
    "user name": lambda d, v: _op(d, "users_created").update(name=v),
    "group name": lambda d, v: _op(d, "groups_created").update(name=v),
    "unit": lambda d, v: _op(d, "units_enabled").update(unit=v),
    "unit started": lambda d, v: _op(d, "units_started").update(unit=v),
    "package name": lambda d, v: _op(d, "packages_installed").update(name=v),
    "package version": lambda d, v: _op(d, "packages_installed").update(version=v),
    "package architecture": lambda d, v: _op(d, "packages_installed").update(architecture=v),
    "removed package": lambda d, v: _op(d, "packages_removed").update(name=v),
    "former version": lambda d, v: _op(d, "packages_upgraded").update(version_before=v),
    "header host": lambda d, v: d["MO_template"].update(host=v),
    "header timestamp": lambda d, v: d["MO_template"].update(timestamp=v or "t"),
    "header command": lambda d, v: d["MO_template"].update(command=v),
    "header arguments": lambda d, v: d["MO_template"].update(arguments=v),
    "header name": lambda d, v: d["MO_template"].update(name=v),
    "header system": lambda d, v: d["MO_template"].update(system=v),
}
ACCOUNT_SIDES = {
    "user changed after": lambda d, v: d["operations"]["users_changed"].append({"name": "hello", "after": v, "before": v}),
    "group changed after": lambda d, v: d["operations"]["groups_changed"].append({"name": "hello", "after": v}),
    "user deleted": lambda d, v: d["operations"]["users_deleted"].append(dict({"name": "gone"}, **{
        k: x for k, x in v.items() if k in ("uid", "gid", "gecos", "home", "shell", "system")})),
}
OPTIONS = st.fixed_dictionaries({}, optional={
    "handlers": st.sampled_from(["inline", "notify", "none"]), "account_ids": st.booleans(),
    "pin_versions": st.booleans(), "install_auto": st.booleans()})


def base():
    doc = apt_template()
    doc["operations"]["users_changed"] = []
    doc["operations"]["groups_changed"] = []
    return doc


CHANGES = st.lists(st.one_of(
    st.tuples(st.sampled_from(sorted(FIELDS)), HOSTILE),
    st.tuples(st.sampled_from(sorted(ACCOUNT_SIDES)), ACCOUNT_STATE),
), min_size=1, max_size=3)


def hostile_doc(changes):
    doc = base()
    for field, value in changes:
        (FIELDS.get(field) or ACCOUNT_SIDES[field])(doc, value)
    doc["summary"] = tpl.summarize(doc["operations"])  # so the hostile value, not the count, is judged
    return doc


def one_sentence(exc):
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert len(text) < 700, text
    assert text.rstrip()[-1] in ".)", text


def loaded(text):
    """TEXT loaded as Ansible loads a task file: trusted as template text, by its own loader."""
    return from_yaml(trust_as_template(text))


def assert_inert(original, back, where="$"):
    """BACK (loaded) equals ORIGINAL (as rendered); only the renderer's Expr strings are trusted."""
    if isinstance(original, dict):
        assert isinstance(back, dict) and list(back) == list(original), where
        for key in original:
            assert_inert(original[key], back[key], "%s.%s" % (where, key))
    elif isinstance(original, (list, tuple)):
        assert isinstance(back, list) and len(back) == len(original), where
        for index, (a, b) in enumerate(zip(original, back)):
            assert_inert(a, b, "%s[%d]" % (where, index))
    elif isinstance(original, str):
        assert isinstance(back, str) and str(back) == str(original), (where, original, back)
        assert is_trusted_as_template(back) == isinstance(original, Expr), (where, original)
        if isinstance(original, Expr):
            assert "pwned" not in original and "\n" not in original, (where, original)
    else:
        assert back == original and isinstance(back, bool) == isinstance(original, bool), (where, original, back)
        assert original is None and back is None or isinstance(back, type(original)), (where, original, back)


def check_tasks_text(tasks, text):
    assert_inert(tasks, loaded(text))


def check_shell(text, what):
    assert text.splitlines() == text.split("\n")[:-1] or text.splitlines() == text.split("\n"), what
    for line in text.split("\n"):
        shlex.split(line, comments=True)  # each line is whole shell words by itself
        assert "pwned" not in line or "'" in line, (what, line)  # only ever inside a quoted word


INSTRUCTIONS = re.compile(r"^(FROM|RUN|COPY|CMD) ")


def check_dockerfile(text):
    lines = text.split("\n")
    assert text.splitlines() == lines[:-1], "a line break other than \\n in the Dockerfile"
    instructions, continued = [], False
    for line in lines:
        if continued:
            assert line.startswith((" && ", "    ")), line
        elif line.startswith("#") or not line:
            pass
        else:
            match = INSTRUCTIONS.match(line)
            assert match, line
            instructions.append(match.group(1) + (" files" if line.startswith("COPY files/") else ""))
        continued = line.endswith("\\")
    pattern = r"FROM (RUN ){0,2}(COPY files )?COPY RUN CMD "
    assert re.fullmatch(pattern, "".join(i + " " for i in instructions)), instructions
    assert "\nFROM scratch" not in text and "\nRUN touch" not in text


def check_control(text):
    assert text.splitlines() == text.split("\n")[:-1]
    fields = [line.split(":", 1)[0] for line in text.split("\n")[:-1] if not line.startswith(" ")]
    assert fields == [f for f in ("Package", "Version", "Architecture", "Maintainer", "Section", "Priority",
                                  "Depends", "Installed-Size", "Description") if f in fields], fields
    assert sum(1 for line in text.split("\n") if line.startswith(" ")) == 1
    assert "" not in text.split("\n")[:-1]  # no empty line: one paragraph


STATS = {}


def render_all(doc, options):
    """Each renderer's output, or the RenderError it raised: {renderer: output | exception}."""
    out = {}
    for name, func in (("tasks", render.to_tasks), ("rollback", render.to_rollback_tasks),
                       ("dockerfile", render.to_dockerfile), ("deb", render.to_deb),
                       ("role", lambda d, o: render.to_role(d, o, role_name="hostile"))):
        try:
            out[name] = func(copy.deepcopy(doc), dict(options))
        except render.RenderError as exc:
            one_sentence(exc)
            out[name] = exc
        STATS.setdefault(name, [0, 0])[isinstance(out[name], Exception)] += 1
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHANGES, OPTIONS)
def test_property_every_renderer_refuses_in_one_sentence_or_emits_inert(changes, options):
    doc = hostile_doc(changes)
    out = render_all(doc, options)
    for name in ("tasks", "rollback"):
        if isinstance(out[name], Exception):
            continue
        try:
            text = inert_yaml.dump(out[name])
        except ValueError as exc:  # the emitter refuses a value it cannot keep a string
            one_sentence(exc)
            continue
        check_tasks_text(out[name], text)
        # the filter the apply_template role uses writes the same text
        filtered = render_filters.to_task_yaml(copy.deepcopy(doc), rollback=(name == "rollback"), **options)
        assert filtered == text
    if not isinstance(out["role"], Exception):
        role = render_filters.to_role(copy.deepcopy(doc), role_name="hostile", write_archive=False, **options)
        for rel, data in out["role"]["files"].items():
            if rel.endswith(".md"):
                for line in role["files"][rel].split("\n"):
                    assert line == "" or line.startswith(("#", "- ", "Generated", "template ", "The role",
                                                          "Files come")), line
                assert role["files"][rel].splitlines() == role["files"][rel].split("\n")[:-1]
                continue
            assert_inert(data, loaded(role["files"][rel]), rel)
    if not isinstance(out["dockerfile"], Exception):
        check_dockerfile(out["dockerfile"]["Dockerfile"])
        check_shell(out["dockerfile"]["setup.sh"], "setup.sh")
    if not isinstance(out["deb"], Exception):
        check_control(out["deb"]["control"])
        for script in ("postinst", "prerm", "postrm"):
            if out["deb"][script]:
                check_shell(out["deb"][script], script)


def accepted(doc, options=None):
    """The tasks of DOC written and loaded back as Ansible would (trusted file text)."""
    tasks = render.to_tasks(doc, options or {})
    back = loaded(render_filters.to_task_yaml(doc, **(options or {})))
    assert_inert(tasks, back)
    return tasks, back


def test_jinja_in_a_gecos_is_accepted_and_lands_literally():
    doc = hostile_doc([("user gecos", PWN)])
    _tasks, back = accepted(doc)
    users = [t for t in back if "ansible.builtin.user" in t][0]
    assert users["loop"][0]["comment"] == PWN and not is_trusted_as_template(users["loop"][0]["comment"])
    assert render.to_dockerfile(doc)["setup.sh"].count(shlex.quote(PWN)) == 1


def test_jinja_in_an_account_after_gid_is_refused_in_one_sentence():
    doc = hostile_doc([("user changed after", {"gid": "{{ lookup('pipe', 'id') }}"})])
    with pytest.raises(render.RenderError) as err:
        render.to_tasks(doc)
    one_sentence(err.value)
    assert "operations/users_changed/0/after/gid" in str(err.value)


@pytest.mark.parametrize("value, words", [
    ([1, 2], "gid"), (1e30, "gid"), (-1, "gid"), (2 ** 32, "gid"), (10 ** 30, "gid"), (True, "gid"),
])
def test_wrong_and_huge_ids_in_account_states_are_refused(value, words):
    doc = hostile_doc([("group changed after", {"gid": value})])
    for func in (render.to_tasks, render.to_dockerfile):
        with pytest.raises(render.RenderError) as err:
            func(copy.deepcopy(doc))
        one_sentence(err.value)
        assert words in str(err.value)


def test_jinja_in_paths_targets_and_names_is_inert():
    doc = hostile_doc([("file path", PWN), ("symlink target", PWN), ("file path (deleted)", PWN)])
    # the name is a file name part (the validator refuses anything else); the rest is free text
    doc["MO_template"].update(system=PWN, host=PWN, command="x\nFROM scratch\nRUN touch /pwned")
    tasks, back = accepted(doc)
    flat = repr(back)
    assert PWN in flat
    role = render_filters.to_role(copy.deepcopy(doc), role_name="hostile", write_archive=False)
    for rel, text in role["files"].items():
        if rel.endswith(".yml"):
            assert_inert(render.to_role(copy.deepcopy(doc), {}, role_name="hostile")["files"][rel], loaded(text), rel)
    check_dockerfile(render.to_dockerfile(doc)["Dockerfile"])


def test_unit_names_reach_conditions_as_variables_only():
    doc = base()
    tasks = render.to_tasks(doc)
    restarts = [t for t in tasks if t["name"].startswith("Restart ")]
    assert restarts
    for task in restarts:
        unit = task["ansible.builtin.systemd_service"]["name"]
        assert all(unit not in cond for cond in task["when"]), task["when"]
        assert task["vars"] == {"mo_fleet_restart_unit": unit}


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.one_of(st.text(), st.integers(-2 ** 64, 2 ** 64), st.booleans(), st.none(),
                              st.builds(Expr, st.sampled_from(["{{ item.path }}", "a is changed"]))),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.sampled_from(["name", "path", "when", "loop", "x_1"]),
                                                            inner, max_size=3)), max_leaves=12))
def test_property_emitter_round_trips_every_value_untrusted(data):
    try:
        text = inert_yaml.dump(data)
    except ValueError as exc:  # a lone surrogate, or a YAML-typed string outside a collection
        one_sentence(exc)
        return
    assert_inert(data, loaded(text))
    assert text.splitlines() == text.split("\n")[:-1]  # only \n breaks lines in the file


@pytest.mark.parametrize("value", ["0644", "", "yes", "null", "1.5e+3", "12\n", "2001-01-01", "~", "0x1c", "*", "!", "&", "="])
def test_yaml_typed_strings_stay_strings(value):
    assert_inert([{"loop": [{"mode": value}]}], loaded(inert_yaml.dump([{"loop": [{"mode": value}]}])))
    with pytest.raises(ValueError):
        inert_yaml.dump({"name": value, "when": Expr("x")})  # a scalar beside an Expr: refused


@pytest.mark.parametrize("key", ["on", "a b", "{{ x }}", "a\nb", 1, "yes"])
def test_emitter_refuses_keys_that_are_not_identifiers(key):
    with pytest.raises(ValueError):
        inert_yaml.dump({key: "x"})


def test_shell_quoting_refuses_every_line_break():
    for brk in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00":
        with pytest.raises(render.RenderError) as err:
            render._q("a" + brk + "b", "The path")
        one_sentence(err.value)
    assert render._q("a b'c") == shlex.quote("a b'c")
    with pytest.raises(render.RenderError) as err:
        render._q("x" * 100000 + "\n")
    one_sentence(err.value)  # a huge value is cut in the message


@pytest.mark.parametrize("name", ["x\n", "hostile\n", "a" * 65, "{{ x }}", "A"])
def test_role_names_are_matched_whole(name):
    with pytest.raises(render.RenderError) as err:
        render.to_role(base(), {}, role_name=name)
    one_sentence(err.value)


def test_the_property_test_rendered_more_than_it_refused():
    """Guard against a property test that only ever sees refusals (it runs first in this file)."""
    if not STATS:
        pytest.skip("run with the property test")
    for name, (rendered, refused) in STATS.items():
        assert rendered > 50, (name, rendered, refused)


def test_the_check_catches_a_task_file_written_as_plain_yaml():
    """The inert check is meaningful: tasks dumped as plain YAML (what to_nice_yaml wrote
    before) give trusted template text for the template's values, which assert_inert rejects."""
    import json
    import yaml

    doc = hostile_doc([("user gecos", PWN)])
    tasks = render.to_tasks(doc)
    plain = yaml.safe_dump(json.loads(json.dumps(tasks)), sort_keys=False)
    with pytest.raises(AssertionError):
        assert_inert(tasks, loaded(plain))
    back = loaded(plain)
    comment = [t for t in back if "ansible.builtin.user" in t][0]["loop"][0]["comment"]
    assert comment == PWN and is_trusted_as_template(comment)  # Ansible would have run the lookup


def _add(doc, op, entry):
    doc["operations"][op].append(entry)
    doc["summary"] = tpl.summarize(doc["operations"])
    return doc


@pytest.mark.parametrize("op, path", [
    ("directories_created", "/etc"), ("directories_deleted", "/usr"), ("files_deleted", "/opt"),
    ("directories_deleted", "/"), ("symlinks_created", "/var"),
])
def test_an_allowed_root_itself_is_never_created_or_deleted(op, path):
    entry = {"path": path, "type": "symlink" if op.startswith("symlinks") else "directory"}
    if op.startswith("symlinks"):
        entry["target"] = "/tmp"
    doc = _add(base(), op, entry)
    for func in (render.to_tasks, render.to_rollback_tasks, render.to_dockerfile):
        with pytest.raises(render.RenderError) as err:
            func(copy.deepcopy(doc))
        one_sentence(err.value)
        assert op in str(err.value)


def test_a_symlink_target_can_never_become_an_option_of_a_shell_command():
    doc = _add(base(), "symlinks_created", {"path": "/opt/app/shadow", "type": "symlink", "target": "-t/tmp/victim"})
    script = render.to_dockerfile(doc)["setup.sh"]
    line = next(line for line in script.split("\n") if "/opt/app/shadow" in line)
    words = shlex.split(line)
    ln = words.index("ln")
    assert words[ln:ln + 3] == ["ln", "-sfn", "--"], line
    for line in script.split("\n"):
        for command in ("mkdir", "chmod", "chown", "rm"):
            if line.startswith(command + " "):
                assert " -- " in line, line


def test_a_deb_never_takes_a_path_where_its_own_metadata_is_written():
    doc = base()
    doc["MO_template"]["name"] = "evil"
    _add(doc, "symlinks_created", {"path": "/usr/share/doc/evil", "type": "symlink", "target": "/tmp/outside"})
    _add(doc, "symlinks_created", {"path": "/usr/share/doc2", "type": "symlink", "target": "/tmp/outside"})
    _add(doc, "directories_created", {"path": "/DEBIAN", "type": "directory", "permissions": "0755"})
    out = render.to_deb(doc, {"name": "evil", "allowed_roots": ["/"]})
    kept = [p for p, _t in out["links"]] + [p for p, _m in out["dirs"]]
    assert "/usr/share/doc/evil" not in kept and "/DEBIAN" not in kept
    assert "/usr/share/doc2" in kept  # not on the way to /usr/share/doc/evil
    reasons = dict(out["left_out"])
    assert "documentation" in reasons["/usr/share/doc/evil"] and "control data" in reasons["/DEBIAN"]


@pytest.mark.parametrize("arguments", ["\\", "x \\", "a\\\nRUN id"])
def test_a_header_value_never_continues_a_dockerfile_comment(arguments):
    doc = base()
    doc["MO_template"]["arguments"] = arguments
    text = render.to_dockerfile(doc)["Dockerfile"]
    check_dockerfile(text)
    assert not any(line.startswith("#") and line.endswith("\\") for line in text.split("\n"))
