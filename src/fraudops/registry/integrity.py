"""Model integrity: a version's artifact digest and the signature of its card.

A registered model is a cloudpickle file: loading it runs code. So nothing loads a version
whose bytes it has not verified (threat model in the README's security section):

- **Digest**: training records ``artifact_sha256`` on each version, the SHA-256 of the model
  directory's manifest (:func:`artifact_digest`: every file's relative path and SHA-256). A
  loader downloads the directory once, recomputes the digest and loads *those* bytes only if it
  matches, so an artifact overwritten in the store (e.g. through MLflow's artifact proxy) is
  refused.
- **Signature**: with a signing key (``FRAUDOPS_MODEL_SIGNING_KEY``, a deployment secret shared
  by the trainer and the readers), training also records ``signature``, an HMAC-SHA256
  (RFC 2104) of the model name, the digest and the model card (threshold, features, spec,
  windows, metrics...: :meth:`~fraudops.registry.card.ModelCard.to_tags`). A version planted
  by anyone without the key, or whose card tags were edited afterwards, does not verify.
  Tags outside the card (``gate``, ``gate_reasons``, overrides) are not signed: they record
  what happened to the version, they do not change how it scores.

HMAC with a shared secret rather than public-key signing: the trainer and the services are
one deployment's processes that already share secrets (the API token, the hash key); the
standard library's ``hmac`` needs no new dependency. A deployment that wants separate signing
and verifying keys can put Sigstore in front of the artifact store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path

from fraudops.registry.card import ModelCard, ModelCardError
from fraudops.settings import MIN_SIGNING_KEY_CHARS

ARTIFACT_TAG = "artifact_sha256"
SIGNATURE_TAG = "signature"
_CHUNK = 1 << 20
#: Written by MLflow's client into each download (the registered name and version it was
#: fetched as), so it differs between downloads; it holds no code and no model state.
DOWNLOAD_METADATA = frozenset({"registered_model_meta"})


class IntegrityError(ValueError):
    """A version's artifact or card does not verify; the message names the tag or file."""


def artifact_digest(root: Path) -> str:
    """SHA-256 (hex) of a model directory's manifest: one line ``<relative path> <file sha256>``
    per regular file but :data:`DOWNLOAD_METADATA`, sorted by path.

    Any changed, added, removed or renamed file changes the digest.

    Raises:
        IntegrityError: ``root`` is not a directory, holds no file, or holds a symbolic link
            (its target could change after the check).
    """
    if not root.is_dir():
        raise IntegrityError(f"model artifact {root} is not a directory")
    lines = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise IntegrityError(f"model artifact holds a symbolic link: {path.relative_to(root)}")
        if not path.is_file() or path.relative_to(root).as_posix() in DOWNLOAD_METADATA:
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        lines.append(f"{path.relative_to(root).as_posix()} {digest.hexdigest()}\n")
    if not lines:
        raise IntegrityError(f"model artifact {root} holds no file")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _payload(model_name: str, digest: str, tags: Mapping[str, str]) -> bytes:
    try:
        card = ModelCard.from_tags(tags).to_tags()
    except ModelCardError as exc:
        raise IntegrityError(str(exc)) from None
    document = {"model": model_name, ARTIFACT_TAG: digest, "card": card}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sign(key: bytes, model_name: str, digest: str, tags: Mapping[str, str]) -> str:
    """HMAC-SHA256 (hex) of the model name, the artifact digest and the card read from ``tags``.

    Raises:
        IntegrityError: the key is shorter than :data:`MIN_SIGNING_KEY_CHARS`, or ``tags`` do not
            make a model card.
    """
    if len(key) < MIN_SIGNING_KEY_CHARS:
        raise IntegrityError(
            f"the model signing key must have at least {MIN_SIGNING_KEY_CHARS} characters"
        )
    return hmac.new(key, _payload(model_name, digest, tags), hashlib.sha256).hexdigest()


def verify(
    model_name: str, version: str, local: Path, tags: Mapping[str, str], key: bytes | None
) -> str:
    """Check a downloaded model directory against its version's tags; returns the digest.

    Args:
        local: the version's model directory, as downloaded (the bytes that will be loaded).
        tags: the version's registry tags.
        key: the signing key; None checks the digest only (the local sqlite registry).

    Raises:
        IntegrityError: no ``artifact_sha256`` tag, a digest that differs from the files, or
            (with a key) no ``signature`` or one that does not match; the message names the
            version and the tag.
    """
    recorded = tags.get(ARTIFACT_TAG)
    if not recorded:
        raise IntegrityError(
            f"version {version} has no {ARTIFACT_TAG} tag: not registered by fraudops training "
            "(or registered before artifacts were verified); refused"
        )
    actual = artifact_digest(local)
    if not hmac.compare_digest(actual, recorded):
        raise IntegrityError(
            f"version {version}: the model files' sha256 {actual[:12]} differs from its "
            f"{ARTIFACT_TAG} tag {recorded[:12]}: the artifact was changed after training; refused"
        )
    if key is None:
        return actual
    signature = tags.get(SIGNATURE_TAG, "")
    if not signature:
        raise IntegrityError(
            f"version {version} has no {SIGNATURE_TAG} tag and a signing key is configured: "
            "it was not registered by a trainer holding the key; refused"
        )
    expected = sign(key, model_name, actual, tags)
    if not hmac.compare_digest(expected, signature):
        raise IntegrityError(
            f"version {version}: its {SIGNATURE_TAG} does not match its model files and card "
            "under the configured signing key (planted, or tags edited after training); refused"
        )
    return actual
