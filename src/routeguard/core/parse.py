"""Plain data (from YAML or JSON) into the typed, immutable bundle. Unknown keys are refused with their path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from routeguard.core import defaults as D
from routeguard.core.fields import FieldReader
from routeguard.core.findings import BundleError, Finding
from routeguard.core.model import (
    Approval,
    Bundle,
    Cost,
    Deployment,
    Endpoint,
    HealthCheck,
    Limits,
    Model,
    Notifier,
    Profile,
    SafeModeAuto,
    SourceConfig,
    Sources,
)
from routeguard.core.parse_policy import parse_policy

__all__ = ["BundleError", "Finding", "parse_bundle"]

_TOP = frozenset(
    {"data_classes", "models", "profiles", "approvals", "notifiers", "policies", "safe_mode", "sources"}
)
_MODEL = frozenset(
    {
        "provider",
        "endpoint",
        "capabilities",
        "modalities",
        "context_window",
        "clearance",
        "regions",
        "cost",
        "languages",
        "limits",
        "trusted",
        "description",
        "deployments",
        "health_check",
    }
)
_HEALTH_CHECK = frozenset({"interval", "timeout", "max_tokens", "prompt", "always"})
_DEPLOYMENT = frozenset({"name", "endpoint", "regions", "weight"})
_ENDPOINT = frozenset(
    {"type", "base_url", "model", "api_key_env", "deployment", "api_version", "max_tokens", "anthropic_version",
     "params"}
)
_PROFILE = frozenset({"requires", "capabilities", "data_class", "regions", "description"})
_APPROVAL = frozenset({"model", "profile", "by", "evidence", "expires"})
_NOTIFIER = frozenset({"type", "url", "host", "port", "from", "to", "headers", "path"})
_ENDPOINT_TYPES = frozenset({"openai", "azure", "anthropic", "litellm", "callable", "fake"})
_NOTIFIER_TYPES = frozenset({"webhook", "slack", "email", "log", "file"})


def parse_bundle(
    raw: object, *, line_of: Callable[[str], int | None] | None = None, source: str | None = None
) -> Bundle:
    """Parse ``raw`` into a :class:`Bundle`; raise :class:`BundleError` listing every schema finding."""
    r = FieldReader(line_of, source)
    top = r.mapping("", raw, _TOP)
    data_classes = _data_classes(r, top)
    models = {k: _model(r, f"models.{k}", v) for k, v in r.mapping("models", top.get("models", {}), None).items()}
    profiles = {
        k: _profile(r, f"profiles.{k}", v) for k, v in r.mapping("profiles", top.get("profiles", {}), None).items()
    }
    approvals = _approvals(r, top.get("approvals", []))
    notifiers = {
        k: _notifier(r, f"notifiers.{k}", v) for k, v in r.mapping("notifiers", top.get("notifiers", {}), None).items()
    }
    policies = {
        k: parse_policy(r, f"policies.{k}", k, v)
        for k, v in r.mapping("policies", top.get("policies", {}), None).items()
    }
    for key in ("models", "profiles", "policies"):
        if isinstance(raw, Mapping) and key not in top:
            r.error(key, f"{key!r} is required")
    if "policies" in top and not policies and not r.findings:
        r.error("policies", "at least one policy is required")
    safe_auto = _safe_mode(r, top.get("safe_mode"))
    sources = _sources(r, top.get("sources"))
    for name, model in models.items():
        if model.clearance not in data_classes:
            r.error(
                f"models.{name}.clearance", f"unknown data class {model.clearance!r} (known: {', '.join(data_classes)})"
            )
    for name, profile in profiles.items():
        if profile.data_class not in data_classes:
            r.error(
                f"profiles.{name}.data_class",
                f"unknown data class {profile.data_class!r} (known: {', '.join(data_classes)})",
            )
    if r.findings:
        raise BundleError(r.findings)
    return Bundle(
        data_classes=data_classes,
        models=MappingProxyType(models),
        profiles=MappingProxyType(profiles),
        approvals=tuple(approvals),
        notifiers=MappingProxyType(notifiers),
        policies=MappingProxyType(policies),
        safe_mode_auto=safe_auto,
        sources=sources,
    )


def _data_classes(r: FieldReader, top: Mapping[str, Any]) -> tuple[str, ...]:
    if "data_classes" not in top:
        return D.DATA_CLASSES
    items = r.string_list("data_classes", top["data_classes"])
    if not items:
        r.error("data_classes", "must list at least one data class, least sensitive first")
        return D.DATA_CLASSES
    if len(set(items)) != len(items):
        r.error("data_classes", "data classes must be unique")
    return tuple(items)


def _model(r: FieldReader, path: str, value: object) -> Model:
    m = r.mapping(path, value, _MODEL)
    endpoint = _endpoint(r, f"{path}.endpoint", m.get("endpoint", {}))
    cost_raw = r.mapping(f"{path}.cost", m.get("cost", {}), frozenset({"input_per_1m", "output_per_1m"}))
    cost = Cost(
        input_per_1m=r.number(cost_raw, f"{path}.cost", "input_per_1m", 0.0),
        output_per_1m=r.number(cost_raw, f"{path}.cost", "output_per_1m", 0.0),
    )
    limits = None
    if m.get("limits") is not None:
        lim = r.mapping(f"{path}.limits", m["limits"], frozenset({"rpm", "tpm"}))
        rpm = r.number(lim, f"{path}.limits", "rpm", None, minimum=1, integer=True)
        tpm = r.number(lim, f"{path}.limits", "tpm", None, minimum=1, integer=True)
        limits = Limits(rpm=int(rpm) if rpm is not None else None, tpm=int(tpm) if tpm is not None else None)
    window = r.number(m, path, "context_window", None, minimum=1, integer=True)
    regions = r.strings(m, path, "regions")
    caps = r.strings(m, path, "capabilities")
    if caps is None:
        r.required(m, path, "capabilities")
    return Model(
        name=path.split(".", 1)[1],
        provider=r.string(m, path, "provider", "unknown"),
        endpoint=endpoint,
        capabilities=caps or frozenset(),
        clearance=str(r.string(m, path, "clearance", "public", required=True)),
        cost=cost,
        modalities=r.strings(m, path, "modalities") or D.MODALITIES,
        context_window=int(window) if window is not None else None,
        regions=regions,
        languages=r.strings(m, path, "languages"),
        limits=limits,
        trusted=r.boolean(m, path, "trusted", False),
        deployments=_deployments(r, path, m.get("deployments"), regions),
        health_check=_health_check(r, f"{path}.health_check", m.get("health_check")),
    )


def _health_check(r: FieldReader, path: str, value: object) -> HealthCheck | None:
    """A model's active health check (CONTRACT §1): off unless configured."""
    if value is None or value is False:
        return None
    h = r.mapping(path, {} if value is True else value, _HEALTH_CHECK)
    interval = r.duration(h, path, "interval", D.HEALTH_CHECK_INTERVAL_S)
    timeout = r.duration(h, path, "timeout", D.HEALTH_CHECK_TIMEOUT_S)
    if interval <= 0:
        r.error(f"{path}.interval", "must be longer than 0s")
        interval = D.HEALTH_CHECK_INTERVAL_S
    if timeout <= 0:
        r.error(f"{path}.timeout", "must be longer than 0s")
        timeout = D.HEALTH_CHECK_TIMEOUT_S
    return HealthCheck(
        interval_s=interval,
        timeout_s=timeout,
        max_tokens=r.integer(h, path, "max_tokens", D.HEALTH_CHECK_MAX_TOKENS, minimum=1),
        prompt=str(r.string(h, path, "prompt", D.HEALTH_CHECK_PROMPT)),
        always=r.boolean(h, path, "always", False),
    )


def _deployments(
    r: FieldReader, path: str, value: object, model_regions: frozenset[str] | None
) -> tuple[Deployment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.error(f"{path}.deployments", "expected a list of deployments")
        return ()
    out: list[Deployment] = []
    for i, item in enumerate(value):
        where = f"{path}.deployments[{i}]"
        d = r.mapping(where, item, _DEPLOYMENT)
        if "endpoint" not in d:
            r.error(f"{where}.endpoint", "'endpoint' is required")
        weight = r.number(d, where, "weight", 1, minimum=0, integer=True)
        regions = r.strings(d, where, "regions")
        if regions is not None and model_regions is not None and not regions <= model_regions:
            outside = ", ".join(sorted(regions - model_regions))
            r.error(f"{where}.regions", f"{outside} outside the model's regions", "region_not_allowed")
        name = str(r.string(d, where, "name", f"d{i + 1}"))
        if name == "main" or any(o.name == name for o in out):
            r.error(f"{where}.name", f"deployment name {name!r} is taken (\"main\" is the model's endpoint)")
        out.append(Deployment(name, _endpoint(r, f"{where}.endpoint", d.get("endpoint", {})),
                              regions, int(weight if weight is not None else 1)))
    return tuple(out)


def _endpoint(r: FieldReader, path: str, value: object) -> Endpoint:
    ep = r.mapping(path, value, _ENDPOINT)
    kind = r.choice(ep, path, "type", _ENDPOINT_TYPES, "openai")
    max_tokens = r.number(ep, path, "max_tokens", None, minimum=1, integer=True)
    params: list[tuple[str, str | int | float | bool]] = []
    for key, item in r.mapping(f"{path}.params", ep.get("params", {}), None).items():
        if isinstance(item, str | int | float | bool):
            params.append((str(key), item))
        else:
            r.error(f"{path}.params.{key}", "expected a string, number or boolean")
    endpoint = Endpoint(
        type=kind,
        base_url=r.string(ep, path, "base_url", None),
        model=r.string(ep, path, "model", None),
        api_key_env=r.string(ep, path, "api_key_env", None),
        deployment=r.string(ep, path, "deployment", None),
        api_version=r.string(ep, path, "api_version", None),
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        anthropic_version=r.string(ep, path, "anthropic_version", None),
        params=tuple(sorted(params)),
    )
    if kind == "azure":
        for key in ("base_url", "deployment"):
            if getattr(endpoint, key) is None:
                r.error(f"{path}.{key}", f"{key!r} is required for an azure endpoint")
    if kind == "litellm" and endpoint.model is None:
        r.error(f"{path}.model", "'model' is required for a litellm endpoint (e.g. bedrock/..., vertex_ai/...)")
    if endpoint.params and kind != "litellm":
        r.error(f"{path}.params", "'params' applies to litellm endpoints only")
    return endpoint


def _profile(r: FieldReader, path: str, value: object) -> Profile:
    p = r.mapping(path, value, _PROFILE)
    return Profile(
        name=path.split(".", 1)[1],
        requires=r.strings(p, path, "requires") or frozenset(),
        capabilities=r.strings(p, path, "capabilities"),
        data_class=str(r.string(p, path, "data_class", "public", required=True)),
        regions=r.strings(p, path, "regions"),
    )


def _approvals(r: FieldReader, value: object) -> list[Approval]:
    if not isinstance(value, list):
        r.error("approvals", "expected a list of {model, profile, by, evidence, expires}")
        return []
    out: list[Approval] = []
    for i, item in enumerate(value):
        path = f"approvals[{i}]"
        a = r.mapping(path, item, _APPROVAL)
        expires = _date(r, path, a.get("expires"))
        out.append(
            Approval(
                model=str(r.string(a, path, "model", "", required=True)),
                profile=str(r.string(a, path, "profile", "", required=True)),
                by=str(r.string(a, path, "by", "")),
                evidence=str(r.string(a, path, "evidence", "")),
                expires=expires,
            )
        )
    return out


def _date(r: FieldReader, path: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            pass
    r.error(f"{path}.expires", f"expected a date YYYY-MM-DD, got {value!r}")
    return None


def _notifier(r: FieldReader, path: str, value: object) -> Notifier:
    n = r.mapping(path, value, _NOTIFIER)
    kind = r.choice(n, path, "type", _NOTIFIER_TYPES, "webhook")
    to = r.string_list(f"{path}.to", n["to"]) if n.get("to") is not None else []
    headers = r.mapping(f"{path}.headers", n.get("headers", {}), None)
    port = r.number(n, path, "port", None, minimum=1, maximum=65535, integer=True)
    if kind in ("webhook", "slack") and not n.get("url"):
        r.error(f"{path}.url", f"a {kind} notifier needs a url")
    if kind == "email" and not n.get("host"):
        r.error(f"{path}.host", "an email notifier needs an smtp host")
    if kind == "file" and not n.get("path"):
        r.error(f"{path}.path", "a file notifier needs a path")
    return Notifier(
        name=path.split(".", 1)[1],
        type=kind,
        url=r.string(n, path, "url", None),
        host=r.string(n, path, "host", None),
        port=int(port) if port is not None else None,
        sender=r.string(n, path, "from", None),
        to=tuple(to or ()),
        headers=MappingProxyType({str(k): str(v) for k, v in headers.items()}),
        path=r.string(n, path, "path", None),
    )


def _safe_mode(r: FieldReader, value: object) -> SafeModeAuto | None:
    if value is None:
        return None
    s = r.mapping("safe_mode", value, frozenset({"auto"}))
    if s.get("auto") is None:
        return None
    a = r.mapping("safe_mode.auto", s["auto"], frozenset({"fallback_failure_rate", "window", "min_samples"}))
    return SafeModeAuto(
        fallback_failure_rate=r.number(
            a, "safe_mode.auto", "fallback_failure_rate", D.SAFE_MODE_FALLBACK_FAILURE_RATE, maximum=1.0
        ),
        window_s=r.duration(a, "safe_mode.auto", "window", D.SAFE_MODE_WINDOW_S),
        min_samples=r.integer(a, "safe_mode.auto", "min_samples", D.SAFE_MODE_MIN_SAMPLES, minimum=1),
    )


def _sources(r: FieldReader, value: object) -> Sources:
    if value is None:
        return Sources()
    s = r.mapping("sources", value, frozenset({"health", "cost"}))
    health = cost = None
    if s.get("health") is not None:
        h = r.mapping("sources.health", s["health"], frozenset({"url", "interval", "timeout"}))
        url = str(r.string(h, "sources.health", "url", "", required=True))
        if url and "{provider}" not in url and "{model}" not in url:
            r.error("sources.health.url", "the URL must contain {provider} (or {model}): it is polled per provider")
        health = SourceConfig(
            url=url,
            interval_s=r.duration(h, "sources.health", "interval", D.SOURCE_HEALTH_INTERVAL_S),
            timeout_s=r.duration(h, "sources.health", "timeout", D.SOURCE_HEALTH_TIMEOUT_S),
        )
    if s.get("cost") is not None:
        c = r.mapping("sources.cost", s["cost"], frozenset({"url", "ttl", "timeout"}))
        url = str(r.string(c, "sources.cost", "url", "", required=True))
        if url and "{model}" not in url:
            r.error("sources.cost.url", "the URL must contain {model}: a quote is asked per model")
        cost = SourceConfig(
            url=url,
            ttl_s=r.duration(c, "sources.cost", "ttl", D.SOURCE_COST_TTL_S),
            timeout_s=r.duration(c, "sources.cost", "timeout", D.SOURCE_COST_TIMEOUT_S),
        )
    return Sources(health=health, cost=cost)
