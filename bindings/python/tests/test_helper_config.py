"""The helper layer's configuration in Python (grpc-helper's API): RpcException, Folders,
Config and its validators, ConfigHolder, RpcStaticConfig, and ConfigSet (default layers,
persistence, get/set/reset, errors, concurrency). The logic is the library's; these tests
check it through the binding, as grpc-helper code would see it."""

import gc
import json
import threading

import pytest

import grpchelper
from grpchelper import (Config, ConfigHolder, ConfigSet, Folders, RpcException,
                        RpcStaticConfig)
from grpchelper.api import (ConfigItem, ConfigItemUpdate, ConfigStatus, ConfigUpdate,
                            ConfigValidator, Filter, ResultCode)
from grpchelper.config import static_config_items

V = ConfigValidator

# Known library bugs (see the report / README): the test states the expected behaviour.


def rc_of(excinfo):
    return excinfo.value.rc


def update(*pairs, ignore_unknown=False):
    return ConfigUpdate(items=[ConfigItemUpdate(name=n, value=v) for n, v in pairs],
                        ignore_unknown=ignore_unknown)


@pytest.fixture
def dirs(tmp_path):
    """(system, user, workspace) paths under tmp_path (not created) and their Folders."""
    system, user, workspace = tmp_path / "sys", tmp_path / "usr", tmp_path / "wks"
    return system, user, workspace, Folders(system, user, workspace)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


# --- RpcException -------------------------------------------------------------------------

def test_rpc_exception_is_grpc_helpers():
    e = RpcException("boom")
    assert isinstance(e, Exception)
    assert str(e) == "boom"
    assert e.rc == ResultCode.ERROR
    e = RpcException("bad", ResultCode.ERROR_PARAM_INVALID)
    assert e.rc == ResultCode.ERROR_PARAM_INVALID
    assert RpcException("x", rc=ResultCode.ERROR_CUSTOM + 3).rc == 103
    assert grpchelper.errors.RpcException is RpcException


# --- Config -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "A", "Abc", "1abc", "-abc", "a_b", "a b", "a.b", "é"])
def test_config_name_rule(name):
    with pytest.raises(RpcException) as e:
        Config(name=name)
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID


@pytest.mark.parametrize("name", ["a", "abc", "a-1", "rpc-max-workers", "x9-"])
def test_config_valid_names(name):
    assert Config(name=name).name == name


def test_custom_validator_is_required():
    with pytest.raises(RpcException) as e:
        Config(name="gh-custom", validator=V.CONFIG_VALID_CUSTOM)
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING
    assert "gh-custom" in str(e.value)


def test_config_rejects_unknown_fields():
    with pytest.raises(TypeError, match="colour"):
        Config(name="gh-x", colour="blue")


def test_config_fields_and_item():
    c = Config(name="gh-item", description="An item", default_value="12", can_be_empty=True,
               validator=V.CONFIG_VALID_POS_INT)
    assert (c.name, c.description, c.default_value, c.str_val) == ("gh-item", "An item", "12", "12")
    assert c.item == ConfigItem(name="gh-item", description="An item", value="12",
                                default_value="12", can_be_empty=True,
                                validator=V.CONFIG_VALID_POS_INT)
    # The validator may be given by name, as protobuf's ConfigItem(validator=...) takes it.
    by_name = Config(name="gh-n", validator="CONFIG_VALID_FLOAT")
    assert by_name.item.validator == V.CONFIG_VALID_FLOAT


VALIDATOR_CASES = [
    (V.CONFIG_VALID_STRING, "anything at all", None),
    (V.CONFIG_VALID_INT, "1_000", None),
    (V.CONFIG_VALID_INT, "-3", None),
    (V.CONFIG_VALID_INT, " 7 ", None),
    (V.CONFIG_VALID_INT, "1.5", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_INT, "abc", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_INT, "1__0", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_INT, "0", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_INT, "-1", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_INT, "1", None),
    (V.CONFIG_VALID_FLOAT, "1e3", None),
    (V.CONFIG_VALID_FLOAT, "inf", None),
    (V.CONFIG_VALID_FLOAT, "-1.5", None),
    (V.CONFIG_VALID_FLOAT, "abc", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_FLOAT, "0", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_FLOAT, "-0.5", ResultCode.ERROR_PARAM_INVALID),
    (V.CONFIG_VALID_POS_FLOAT, "0.5", None),
]


@pytest.mark.parametrize("validator,value,rc", VALIDATOR_CASES,
                         ids=["%s-%r" % (V.Name(v), s) for v, s, _ in VALIDATOR_CASES])
def test_validators(validator, value, rc):
    c = Config(name="gh-v", default_value="", can_be_empty=True, validator=validator)
    if rc is None:
        c.validate("gh-v", value)        # grpc-helper's two-argument form
        c.validate(value)                # and the one-argument form
        c.update(value)
        assert c.str_val == value
    else:
        for call in (lambda: c.validate("gh-v", value), lambda: c.validate(value),
                     lambda: c.update(value)):
            with pytest.raises(RpcException) as e:
                call()
            assert rc_of(e) == rc
            assert "gh-v" in str(e.value)
        assert c.str_val == ""           # unchanged


@pytest.mark.parametrize("validator", [V.CONFIG_VALID_STRING, V.CONFIG_VALID_INT,
                                       V.CONFIG_VALID_POS_FLOAT])
def test_empty_values(validator):
    strict = Config(name="gh-strict", default_value="1", validator=validator)
    with pytest.raises(RpcException) as e:
        strict.update("")
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING
    assert strict.str_val == "1"
    lenient = Config(name="gh-lenient", default_value="1", can_be_empty=True, validator=validator)
    lenient.update("")
    assert lenient.str_val == ""


def test_int_and_float_values():
    c = Config(name="gh-num", default_value="1_000", validator=V.CONFIG_VALID_INT)
    assert c.int_val == 1000 and isinstance(c.int_val, int)
    assert c.float_val == 1000.0 and isinstance(c.float_val, float)
    f = Config(name="gh-f", default_value="2.5e-1", validator=V.CONFIG_VALID_FLOAT)
    assert f.float_val == 0.25
    with pytest.raises(ValueError):          # int("2.5e-1"), as grpc-helper
        f.int_val
    s = Config(name="gh-s", default_value="abc")
    with pytest.raises(ValueError):
        s.float_val
    big = Config(name="gh-big", default_value="99999999999999999999")   # STRING: any text
    assert big.int_val == 99999999999999999999


def test_update_and_reset():
    c = Config(name="gh-u", default_value="3", validator=V.CONFIG_VALID_POS_INT)
    c.update("5")
    assert c.str_val == "5" and c.default_value == "3"
    with pytest.raises(RpcException):
        c.update("-5")
    assert c.str_val == "5"
    c.reset()
    assert c.str_val == "3"


def test_python_custom_validator():
    seen = []

    def even(name, value):
        seen.append((name, value))
        if int(value) % 2:                     # "abc" raises ValueError: PARAM_INVALID
            raise RpcException("%s wants an even number, not %s" % (name, value),
                               ResultCode.ERROR_ITEM_CONFLICT)

    c = Config(name="gh-even", default_value="2", validator=V.CONFIG_VALID_CUSTOM,
               custom_validator=even)
    c.update("4")
    assert c.str_val == "4"
    with pytest.raises(RpcException) as e:
        c.update("3")
    assert rc_of(e) == ResultCode.ERROR_ITEM_CONFLICT
    assert str(e.value) == "gh-even wants an even number, not 3"
    with pytest.raises(RpcException) as e:
        c.validate("gh-even", "abc")
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID
    assert "invalid literal for int()" in str(e.value)
    assert ("gh-even", "3") in seen and ("gh-even", "abc") in seen
    assert c.str_val == "4"


def test_custom_validator_long_message_and_custom_code():
    def noisy(name, value):
        raise RpcException("é" * 5000, ResultCode.ERROR_CUSTOM + 7)

    c = Config(name="gh-noisy", validator=V.CONFIG_VALID_CUSTOM, custom_validator=noisy)
    with pytest.raises(RpcException) as e:
        c.validate("x")
    assert rc_of(e) == 107
    msg = str(e.value)
    assert msg and set(msg) == {"é"}            # cut to the buffer, on a character boundary


def test_custom_validator_lives_as_long_as_the_native_item(dirs):
    _, _, _, folders = dirs
    calls = []
    from grpchelper._native.callbacks import registry

    def registered(fn):
        return any(v is fn for v in registry.snapshot("config-validator").values())

    validator = lambda n, v: calls.append(v)  # noqa: E731
    c = Config(name="gh-kept", default_value="ok", validator=V.CONFIG_VALID_CUSTOM,
               custom_validator=validator)
    s = ConfigSet(user_items=[c], folders=folders)
    del c
    gc.collect()
    # The set holds the item: its Python validator is still called.
    s.set(update(("gh-kept", "again")))
    assert calls[-1] == "again"
    assert registered(validator)
    s.close()
    del s
    gc.collect()
    assert not registered(validator)          # freed with the last native reference


# --- ConfigHolder / RpcStaticConfig ------------------------------------------------------

class Holder(ConfigHolder):
    FIRST = Config(name="gh-first", default_value="1")
    SECOND = Config(name="gh-second", default_value="2", validator=V.CONFIG_VALID_INT)
    NOT_AN_ITEM = "gh-third"


def test_config_holder_lists_its_items():
    assert Holder.all_config_items() == [Holder.FIRST, Holder.SECOND]


STATIC_NAMES = {
    "MAX_WORKERS": ("rpc-max-workers", "30", V.CONFIG_VALID_POS_INT),
    "SHUTDOWN_GRACE": ("rpc-shutdown-grace", "30", V.CONFIG_VALID_POS_FLOAT),
    "SHUTDOWN_TIMEOUT": ("rpc-shutdown-timeout", "60", V.CONFIG_VALID_POS_FLOAT),
    "LOGS_FOLDER": ("rpc-logs-folder", "logs", V.CONFIG_VALID_STRING),
    "LOGS_BACKUP": ("rpc-logs-backup", "10", V.CONFIG_VALID_INT),
    "LOGS_ROLLOVER_INTERVAL_UNIT": ("rpc-logs-interval-unit", "H", V.CONFIG_VALID_CUSTOM),
    "LOGS_ROLLOVER_INTERVAL": ("rpc-logs-interval", "1", V.CONFIG_VALID_POS_INT),
    "MAIN_HOST": ("rpc-main-host", "localhost", V.CONFIG_VALID_STRING),
    "MAIN_PORT": ("rpc-main-port", "54321", V.CONFIG_VALID_POS_INT),
    "CLIENT_TIMEOUT": ("rpc-client-timeout", "60", V.CONFIG_VALID_POS_FLOAT),
    "EVENT_RETAIN_TIMEOUT": ("rpc-event-retain-timeout", "300", V.CONFIG_VALID_POS_INT),
    "EVENT_KEEPALIVE_TIMEOUT": ("rpc-event-keepalive-timeout", "60", V.CONFIG_VALID_POS_INT),
    "EVENT_QUEUE_MAX": ("rpc-event-queue-max", "10000", V.CONFIG_VALID_POS_INT),
    "ADMIN_PEERS": ("rpc-admin-peers", "any", V.CONFIG_VALID_CUSTOM),
}


def test_rpc_static_config_attributes():
    items = RpcStaticConfig.all_config_items()
    assert len(items) == len(STATIC_NAMES)
    for attribute, (name, default, validator) in STATIC_NAMES.items():
        item = getattr(RpcStaticConfig, attribute)
        assert isinstance(item, Config)
        assert item in items
        assert (item.name, item.default_value, item.item.validator) == (name, default, validator)
        assert item.description
    assert RpcStaticConfig.MAX_WORKERS.int_val == 30
    assert grpchelper.RpcStaticConfig is RpcStaticConfig


def test_static_config_items_are_new_each_time():
    a, b = static_config_items(), static_config_items()
    assert list(a) == [name for name, _, _ in STATIC_NAMES.values()]
    assert a["rpc-max-workers"] is not b["rpc-max-workers"]
    a["rpc-max-workers"].update("7")
    assert b["rpc-max-workers"].str_val == "30"


@pytest.mark.parametrize("value", ["S", "m", "H", "d", "midnight", "MIDNIGHT", "w0", "W6"])
def test_interval_unit_accepts(value):
    RpcStaticConfig.LOGS_ROLLOVER_INTERVAL_UNIT.validate("rpc-logs-interval-unit", value)


@pytest.mark.parametrize("value", ["X", "W7", "hours", "SS"])
def test_interval_unit_rejects(value):
    with pytest.raises(RpcException) as e:
        RpcStaticConfig.LOGS_ROLLOVER_INTERVAL_UNIT.validate("rpc-logs-interval-unit", value)
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID
    assert value in str(e.value)


# --- Folders ------------------------------------------------------------------------------

def test_folders_created_on_access(tmp_path):
    system, user, workspace = tmp_path / "s", tmp_path / "a" / "u", tmp_path / "b" / "w"
    f = Folders(str(system), user, workspace)
    assert not user.exists() and not workspace.exists()
    assert f.system == system and not system.exists()      # never created
    assert f.user == user and user.is_dir()
    assert f.workspace == workspace and workspace.is_dir()
    assert all(isinstance(p, type(tmp_path)) for p in (f.system, f.user, f.workspace))
    empty = Folders()
    assert (empty.system, empty.user, empty.workspace) == (None, None, None)


def test_folders_expand_tilde(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    f = Folders("~/sys", "~/usr", "~/wks")
    assert f.system == home / "sys"
    assert f.user == home / "usr" and (home / "usr").is_dir()
    assert f.workspace == home / "wks"


def test_folders_user_creation_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    f = Folders(user=blocker / "sub")
    with pytest.raises(RpcException) as e:
        f.user
    assert rc_of(e) == ResultCode.ERROR
    assert str(blocker) in str(e.value)


# --- ConfigSet: default layers -------------------------------------------------------------

def layered_items():
    return [Config(name="gh-l%d" % i, default_value="hard") for i in range(1, 6)]


def test_layers_override_each_other(dirs, monkeypatch):
    system, user, workspace, folders = dirs
    write_json(system / "config.json",
               {"gh-l2": "sys", "gh-l3": "sys", "gh-l4": "sys", "gh-l5": "sys"})
    write_json(user / "config.json", {"gh-l3": "usr", "gh-l4": "usr", "gh-l5": "usr"})
    monkeypatch.setenv("GH_L4", "env")
    monkeypatch.setenv("GH_L5", "env")
    items = layered_items()
    with ConfigSet(user_items=items, folders=folders, cli_config={"gh-l5": "cli"}) as s:
        assert [(c.default_value, c.str_val) for c in items] == [
            ("hard", "hard"), ("sys", "sys"), ("usr", "usr"), ("env", "env"), ("cli", "cli")]
        assert s.item("gh-l5") is items[4]
        assert s.warnings == []


def test_layers_apply_to_static_items(dirs, monkeypatch):
    _, _, _, folders = dirs
    statics = static_config_items()
    monkeypatch.setenv("RPC_MAIN_HOST", "example.org")
    with ConfigSet(static_items=list(statics.values()), folders=folders,
                   cli_config={"rpc-max-workers": "4"}) as s:
        assert s.item("rpc-max-workers").int_val == 4
        assert s.item("rpc-main-host").str_val == "example.org"
        assert s.item("rpc-max-workers") is statics["rpc-max-workers"]


def test_a_second_set_starts_from_the_hard_coded_default():
    c = Config(name="gh-hard", default_value="1", validator=V.CONFIG_VALID_INT)
    with ConfigSet(user_items=[c], cli_config={"gh-hard": "5"}):
        assert c.default_value == "5"
    with ConfigSet(user_items=[c]):
        assert c.default_value == "1"        # grpc-helper: hard_coded_default_value


def test_invalid_default_names_item_and_layer(dirs, monkeypatch):
    system, user, workspace, folders = dirs

    def num(default="1"):
        return Config(name="gh-num", default_value=default, validator=V.CONFIG_VALID_INT)

    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[num("x")])
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID and "gh-num" in str(e.value)
    assert "hard-coded" in str(e.value)

    write_json(user / "config.json", {"gh-num": "one"})
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[num()], folders=folders)
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID
    assert "gh-num" in str(e.value) and str(user / "config.json") in str(e.value)

    (user / "config.json").unlink()
    monkeypatch.setenv("GH_NUM", "two")
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[num()], folders=folders)
    assert "gh-num" in str(e.value) and "GH_NUM" in str(e.value)

    monkeypatch.delenv("GH_NUM")
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[num()], folders=folders, cli_config={"gh-num": ""})
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING
    assert "gh-num" in str(e.value) and "command line" in str(e.value)


def test_item_in_both_lists(dirs):
    c = Config(name="gh-both")
    with pytest.raises(RpcException) as e:
        ConfigSet(static_items=[c], user_items=[c])
    assert rc_of(e) == ResultCode.ERROR_MODEL_INVALID and "gh-both" in str(e.value)
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[c, Config(name="gh-both")])
    assert rc_of(e) == ResultCode.ERROR_MODEL_INVALID


def test_holders_and_duplicate_objects(dirs):
    _, _, _, folders = dirs
    # A holder expands to its items; the same object listed twice counts once.
    with ConfigSet(user_items=[Holder, Holder.FIRST], folders=folders) as s:
        assert s.item("gh-first") is Holder.FIRST
        assert s.item("gh-second") is Holder.SECOND
        assert set(s.user_items) == {"gh-first", "gh-second"}
        assert s.item("gh-none") is None
    with pytest.raises(TypeError):
        ConfigSet(user_items=["gh-first"])


@pytest.mark.parametrize("where", ["system", "user", "workspace"])
@pytest.mark.parametrize("content", ["{not json", "[\"a\"]", "{\"gh-a\": 1}", "\"text\""])
def test_malformed_config_json(dirs, where, content):
    system, user, workspace, folders = dirs
    path = {"system": system, "user": user, "workspace": workspace}[where] / "config.json"
    write_json(path, content)
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[Config(name="gh-a", default_value="v")], folders=folders)
    assert rc_of(e) == ResultCode.ERROR_MODEL_INVALID
    assert str(path) in str(e.value)


def test_malformed_cli_config():
    with pytest.raises(RpcException) as e:
        ConfigSet(user_items=[Config(name="gh-a", default_value="v")], cli_config=["gh-a"])
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID


# --- ConfigSet: ConfigService operations ---------------------------------------------------

def service_items():
    return [Config(name="gh-a", description="A", default_value="1", validator=V.CONFIG_VALID_INT),
            Config(name="gh-b", default_value="x"),
            Config(name="gh-c", default_value="0.5", validator=V.CONFIG_VALID_POS_FLOAT)]


@pytest.fixture
def config_set(dirs):
    """A set of the service_items() (user) and a fresh copy of the static items."""
    _, _, _, folders = dirs
    s = ConfigSet(static_items=list(static_config_items().values()), user_items=service_items(),
                  folders=folders)
    yield s
    s.close()


def names(status):
    return [i.name for i in status.items]


def test_get(config_set):
    everything = config_set.get(Filter())
    assert isinstance(everything, ConfigStatus)
    assert names(everything) == ["gh-a", "gh-b", "gh-c"]       # user items only
    assert everything.items[0] == ConfigItem(name="gh-a", description="A", value="1",
                                             default_value="1", validator=V.CONFIG_VALID_INT)
    assert names(config_set.get(Filter(names=["gh-c", "gh-a"]))) == ["gh-c", "gh-a"]
    for bad in (["rpc-max-workers"], ["gh-a", "gh-zz"]):        # static items are not visible
        with pytest.raises(RpcException) as e:
            config_set.get(Filter(names=bad))
        assert rc_of(e) == ResultCode.ERROR_ITEM_UNKNOWN
    assert names(config_set.get(Filter(names=["gh-a", "gh-zz", "rpc-max-workers"],
                                       ignore_unknown=True))) == ["gh-a"]
    with pytest.raises(RpcException) as e:
        config_set.get(Filter(names=[""]))
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING
    with pytest.raises(TypeError):
        config_set.get(ConfigUpdate())


def test_set_persists_non_default_values(dirs, config_set):
    _, _, workspace, folders = dirs
    a = config_set.item("gh-a")
    status = config_set.set(update(("gh-a", "5"), ("gh-b", "y")))
    assert [(i.name, i.value) for i in status.items] == [("gh-a", "5"), ("gh-b", "y")]
    assert a.str_val == "5"                                    # the caller's object follows
    assert json.loads((workspace / "config.json").read_text()) == {"gh-a": "5", "gh-b": "y"}
    config_set.set(update(("gh-b", "x")))                      # back to the default value
    assert json.loads((workspace / "config.json").read_text()) == {"gh-a": "5"}
    a.update("6")                                              # the set sees the object's change
    assert config_set.get(Filter(names=["gh-a"])).items[0].value == "6"

    # A new set over the same folders restores the persisted values.
    items = service_items()
    with ConfigSet(user_items=items, folders=folders) as again:
        assert [c.str_val for c in items] == ["5", "x", "0.5"]
        assert again.warnings == []


def test_reset(dirs, config_set):
    _, _, workspace, _ = dirs
    config_set.set(update(("gh-a", "5"), ("gh-c", "2")))
    status = config_set.reset(Filter(names=["gh-a"]))
    assert [(i.name, i.value) for i in status.items] == [("gh-a", "1")]
    assert config_set.item("gh-a").str_val == "1"
    assert json.loads((workspace / "config.json").read_text()) == {"gh-c": "2"}
    with pytest.raises(RpcException) as e:
        config_set.reset(Filter())
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING


def test_persisted_value_that_no_longer_validates(dirs):
    _, _, workspace, folders = dirs
    write_json(workspace / "config.json", {"gh-a": "not an int", "gh-b": "kept"})
    items = service_items()
    with ConfigSet(user_items=items, folders=folders) as s:
        assert items[0].str_val == "1" and items[1].str_val == "kept"
        assert len(s.warnings) == 1
        assert "gh-a" in s.warnings[0] and str(workspace / "config.json") in s.warnings[0]


def test_set_applies_nothing_on_a_bad_value(dirs, config_set):
    _, _, workspace, _ = dirs
    with pytest.raises(RpcException) as e:
        config_set.set(update(("gh-b", "new"), ("gh-a", "1.5")))
    assert rc_of(e) == ResultCode.ERROR_PARAM_INVALID and "gh-a" in str(e.value)
    assert config_set.item("gh-b").str_val == "x"
    assert not (workspace / "config.json").exists()


def test_set_unknown_and_empty(config_set):
    with pytest.raises(RpcException) as e:
        config_set.set(update(("gh-a", "2"), ("gh-nope", "1")))
    assert rc_of(e) == ResultCode.ERROR_ITEM_UNKNOWN and "gh-nope" in str(e.value)
    assert config_set.item("gh-a").str_val == "1"
    with pytest.raises(RpcException) as e:
        config_set.set(update(("rpc-max-workers", "3")))         # static: not settable
    assert rc_of(e) == ResultCode.ERROR_ITEM_UNKNOWN
    status = config_set.set(update(("gh-a", "2"), ("gh-nope", "1"), ignore_unknown=True))
    assert names(status) == ["gh-a"] and config_set.item("gh-a").str_val == "2"
    with pytest.raises(RpcException) as e:
        config_set.set(ConfigUpdate())
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING
    with pytest.raises(RpcException) as e:
        config_set.set(update(("", "1")))
    assert rc_of(e) == ResultCode.ERROR_PARAM_MISSING


def test_set_through_python_custom_validator(dirs):
    _, _, workspace, folders = dirs

    def lower(name, value):
        if value != value.lower():
            raise RpcException("%s must be lower case: %s" % (name, value),
                               ResultCode.ERROR_PARAM_UNSUPPORTED)

    c = Config(name="gh-lower", default_value="a", validator=V.CONFIG_VALID_CUSTOM,
               custom_validator=lower)
    with ConfigSet(user_items=[c], folders=folders) as s:
        with pytest.raises(RpcException) as e:
            s.set(update(("gh-lower", "ABC")))
        assert rc_of(e) == ResultCode.ERROR_PARAM_UNSUPPORTED
        assert str(e.value) == "gh-lower must be lower case: ABC"
        s.update("gh-lower", "abc")
        assert c.str_val == "abc"
        assert json.loads((workspace / "config.json").read_text()) == {"gh-lower": "abc"}


def test_concurrent_sets(dirs):
    _, _, workspace, folders = dirs
    threads_n, rounds = 8, 25
    items = [Config(name="gh-t%d" % i, default_value="0", validator=V.CONFIG_VALID_INT)
             for i in range(threads_n)]
    shared = Config(name="gh-shared", default_value="0", validator=V.CONFIG_VALID_INT)
    errors = []
    start = threading.Barrier(threads_n)

    with ConfigSet(user_items=items + [shared], folders=folders) as s:
        def worker(i):
            try:
                start.wait()
                for r in range(1, rounds + 1):
                    s.set(update(("gh-t%d" % i, str(r)), ("gh-shared", str(i * 1000 + r))))
                    json.loads((workspace / "config.json").read_text())  # never torn
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        persisted = json.loads((workspace / "config.json").read_text())
        current = {i.name: i.value for i in s.get(Filter()).items}
        assert all(current["gh-t%d" % i] == str(rounds) for i in range(threads_n))
        assert int(current["gh-shared"]) % 1000 == rounds        # some thread's last set
        assert persisted == current                               # file == memory


def test_closed_set(dirs):
    _, _, _, folders = dirs
    c = Config(name="gh-a", default_value="1")
    s = ConfigSet(user_items=[c], folders=folders)
    s.close()
    s.close()
    with pytest.raises(ValueError):
        s.get(Filter())
    with pytest.raises(ValueError):
        s.item("gh-a")
    assert c.str_val == "1"          # the caller's items outlive the set
    c.update("2")
