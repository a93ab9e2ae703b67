"""A static review page of a run: see what was removed before data leaves the hospital.

:func:`build_review` reads a run report (``OUTDIR-report.jsonl``) and writes
``OUTDIR-review/``: ``index.html`` (styles and script inline, no network fetch,
opens from a ``file://`` path), the run's data as ``data.js``, and per output a
thumbnail and a full-size PNG of the *scrubbed* pixels with the redactions drawn
and coloured by reason.  A cine shows a strip of the frames its redactions are on.

By default the page holds no PHI: scrubbed pixels only, no OCR text, no header
values, no input or output paths (a card is named by its number and a hash of its
output path).  ``show_phi=True`` (``--show-phi``) adds the original image and the
OCR text for a reviewer allowed to see them, under a banner saying so; it needs a
report written with ``--log-phi``, which holds the input paths and the text.

A reviewer marks cards approved or rejected and downloads the decisions as JSON;
:func:`release` (``pixelscrub release``) moves the rejected outputs into a quarantine
folder.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ScrubError

__all__ = ["build_review", "release", "reason_group", "output_key", "default_review_path"]

#: Colours (BGR for OpenCV, hex for the page) of each group of reasons.
GROUPS = {"header": ("#e4572e", (46, 87, 228)), "pattern": ("#f3a712", (18, 167, 243)),
          "label": ("#a8c686", (134, 198, 168)), "lexicon": ("#c17dde", (222, 125, 193)),
          "user-region": ("#29b6f6", (246, 182, 41)), "rule": ("#4dd0e1", (225, 208, 77)),
          "all-text": ("#ffee58", (88, 238, 255)), "unread": ("#ff1744", (68, 23, 255)),
          "other": ("#bdbdbd", (189, 189, 189))}
THUMB = 240
STRIP_FRAMES = 4


def reason_group(reason: str) -> str:
    """The colour group of a hit reason: header, pattern, label, lexicon, user-region,
    rule, all-text, unread (regions needing review) or other."""
    if reason.startswith("header:"):
        return "header"
    if reason.startswith("pattern:"):
        return "pattern"
    if reason.startswith("label:"):
        return "label"
    if reason.startswith("lexicon:"):
        return "lexicon"
    if reason.startswith("rule:"):
        return "rule"
    if reason == "mode:all-text":
        return "all-text"
    return reason if reason in GROUPS else "other"


def output_key(output: str) -> str:
    """How the page and the decisions name an output: a hash of its path, no PHI."""
    return hashlib.sha256(output.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def default_review_path(report: Path) -> Path:
    """``OUTDIR-review`` for ``OUTDIR-report.jsonl``; else ``REPORT-review``."""
    name = report.name
    stem = name[:-len("-report.jsonl")] if name.endswith("-report.jsonl") else report.stem
    return report.parent / f"{stem}-review"


def _records(report: Path) -> tuple[list[dict], dict]:
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScrubError(f"{report}: cannot read the run report ({exc.strerror})",
                         reason="usage") from None
    recs = [json.loads(line) for line in lines if line.strip()]
    summary = recs[-1] if recs and recs[-1].get("record") == "summary" else {}
    return [r for r in recs if r.get("record") != "summary"], summary


def _resolve_output(report: Path, output: str) -> Path:
    """Outputs are named ``OUTDIR/rel`` relative to the report's folder (or absolute
    with ``--log-phi``)."""
    p = Path(output)
    return p if p.is_absolute() else report.parent / p


def _views(ds, wanted: list[int]) -> list[tuple[int, np.ndarray]]:
    """The display views (RGB) of the ``wanted`` frames, in one pass over the frames
    (a cine is decoded once, up to the last frame wanted)."""
    from .decode import iter_display
    out, last = [], max(wanted)
    for i, frame in enumerate(iter_display(ds)):
        if i in wanted:
            img = np.asarray(frame)
            out.append((i, img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)))
        if i >= last:
            break
    return out


def _draw(img: np.ndarray, boxes: list[dict], frame: int) -> np.ndarray:
    out = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    width = max(1, round(max(out.shape[:2]) / 300))
    for b in boxes:
        frames = b["frames"]
        if frames != "all" and frame not in frames:
            continue
        x0, y0, x1, y1 = b["box"]
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)),
                      GROUPS[reason_group(b["reason"])][1], width)
    return out


def _thumb(images: list[np.ndarray]) -> np.ndarray:
    scaled = []
    for im in images:
        s = THUMB / max(im.shape[:2])
        scaled.append(cv2.resize(im, None, fx=min(1.0, s), fy=min(1.0, s),
                                 interpolation=cv2.INTER_AREA))
    h = max(i.shape[0] for i in scaled)
    return np.hstack([np.pad(i, ((0, h - i.shape[0]), (0, 2), (0, 0))) for i in scaled])


def _card_frames(rec: dict, frames: int) -> list[int]:
    """Frame 0, then for a cine the first frames its frame-specific redactions are
    on, then frames where changing text was found (a timer, a new label)."""
    candidates = [h["frames"][0] for h in rec.get("hits", []) + rec.get("review", [])
                  if h["frames"] != "all" and h["frames"]]
    for stage in rec.get("stages", []):
        if stage.get("stage") == "read":
            for counts in stage.get("counts", {}).values():
                if isinstance(counts, dict):
                    candidates += counts.get("dynamic_frames", [])
    picked = [0]
    for f in candidates:
        if f not in picked and f < frames and len(picked) < STRIP_FRAMES:
            picked.append(f)
    return sorted(picked)


def build_review(report, *, out_dir=None, show_phi: bool = False) -> Path:
    """Write the review page of the run ``report``; returns the path of index.html."""
    import pydicom

    report = Path(report)
    recs, summary = _records(report)
    if show_phi and any(r.get("hits") and any("text" not in h for h in r["hits"]) for r in recs):
        raise ScrubError(f"{report}: --show-phi needs a report written with --log-phi "
                         "(it holds the input paths and the OCR text)", reason="usage")
    out = Path(out_dir) if out_dir else default_review_path(report)
    img_dir = out / "img"
    if out.exists():
        shutil.rmtree(out)
    img_dir.mkdir(parents=True)
    cards, devices, reasons_count = [], Counter(), Counter()
    for n, rec in enumerate(recs, 1):
        card: dict[str, Any] = {"n": n, "status": rec.get("status"),
                                "ts_in": rec.get("transfer_syntax_in"),
                                "ts_out": rec.get("transfer_syntax_out"),
                                "frames": rec.get("frames", 0),
                                "checked": rec.get("frames_checked", 0),
                                "review": len(rec.get("review", [])),
                                "reasons": sorted({reason_group(h["reason"])
                                                   for h in rec.get("hits", []) + rec.get("review", [])}),
                                "hits": Counter(reason_group(h["reason"])
                                                for h in rec.get("hits", []))}
        if rec.get("status") == "failed":
            card.update(key=output_key(f"failed:{n}"), reason=_failure_reason(rec))
            cards.append(card)
            continue
        output = rec.get("output")
        card["key"] = output_key(output or f"none:{n}")
        if output:
            _add_images(card, rec, _resolve_output(report, output), img_dir, show_phi, pydicom)
            devices[card.get("device", "unknown")] += 1
        for g, k in card["hits"].items():
            reasons_count[g] += k
        if show_phi:
            card["text"] = sorted({h.get("text", "") for h in rec.get("hits", []) if h.get("text")})
            card["input"] = rec.get("input")
        cards.append(card)
    data = {"show_phi": show_phi, "cards": cards, "groups": {k: v[0] for k, v in GROUPS.items()},
            "summary": {k: summary.get(k) for k in ("files_in", "files_out", "clean", "unverified",
                                                    "written_unchecked", "failed", "skipped",
                                                    "frames", "frames_checked", "wall_seconds")},
            "seconds_by_stage": summary.get("seconds_by_stage", {}),
            "hits_by_reason": dict(reasons_count),
            "files_by_device": dict(devices)}
    (out / "data.js").write_text("window.REVIEW = " + json.dumps(data) + ";\n", encoding="utf-8")
    (out / "index.html").write_text(_page(show_phi), encoding="utf-8")
    return out / "index.html"


def _failure_reason(rec: dict) -> str:
    """The reason of a failed file without its name (which may be a path)."""
    error, name = rec.get("error") or "failed", rec.get("input") or ""
    return error[len(name) + 2:] if name and error.startswith(name + ": ") else "failed"


def _add_images(card: dict, rec: dict, path: Path, img_dir: Path, show_phi: bool, pydicom) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            boxes = rec.get("hits", []) + rec.get("review", [])
            frames = _card_frames(rec, int(rec.get("frames") or 1))
            views = _views(ds, frames)
    except Exception as exc:  # noqa: BLE001 - the page says the output could not be shown
        card["image_error"] = type(exc).__name__
        return
    if not views:
        card["image_error"] = "no frame"
        return
    drawn = [_draw(v, boxes, f) for f, v in views]
    key = card["key"]
    cv2.imwrite(str(img_dir / f"{key}-t.png"), _thumb(drawn))
    cv2.imwrite(str(img_dir / f"{key}-f.png"), drawn[0])
    card.update(thumb=f"img/{key}-t.png", full=f"img/{key}-f.png", strip=[f for f, _ in views],
                modality=str(ds.get("Modality", "")), burned_in=str(ds.get("BurnedInAnnotation", "")),
                device=(f"{ds.get('Manufacturer', '') or '?'} "
                        f"{ds.get('ManufacturerModelName', '') or ''}").strip())
    if show_phi and rec.get("input") and os.path.isfile(rec["input"]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                original = _views(pydicom.dcmread(rec["input"]), [0])
            if original:
                cv2.imwrite(str(img_dir / f"{key}-o.png"),
                            cv2.cvtColor(original[0][1], cv2.COLOR_RGB2BGR))
                card["original"] = f"img/{key}-o.png"
        except Exception:  # noqa: BLE001
            card["original_error"] = True


def release(decisions, report, quarantine) -> tuple[int, int]:
    """Move the outputs a reviewer rejected (``decisions``: the JSON the page
    downloads) out of the output folders of the run ``report`` into ``quarantine``,
    under their ``OUTDIR/rel`` names; returns (moved, left in place)."""
    try:
        decided = json.loads(Path(decisions).read_text(encoding="utf-8"))["decisions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScrubError(f"{decisions}: not a review decisions file ({type(exc).__name__})",
                         reason="usage") from None
    report = Path(report)
    recs, _ = _records(report)
    moved = kept = 0
    for rec in recs:
        output = rec.get("output")
        if not output or rec.get("status") == "failed":
            continue
        path = _resolve_output(report, output)
        if decided.get(output_key(output)) != "rejected" or not path.is_file():
            kept += path.is_file()
            continue
        rel = Path(output)
        dst = Path(quarantine) / (rel.relative_to(rel.anchor) if rel.is_absolute() else rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(dst))
        moved += 1
    return moved, kept


def _page(show_phi: bool) -> str:
    banner = ('<div id="phi-banner">This page shows PHI: original images and OCR text. '
              'Do not share it.</div>' if show_phi else "")
    return _TEMPLATE.replace("{{banner}}", banner).replace("{{title}}", html.escape(
        "pixelscrub review" + (" (shows PHI)" if show_phi else "")))


_TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{padding:10px 16px;background:#1d1d1d;position:sticky;top:0;z-index:2}
#phi-banner{background:#b71c1c;color:#fff;padding:8px 16px;font-weight:bold}
#summary{display:flex;gap:24px;flex-wrap:wrap;padding:8px 16px}
.plot{background:#1b1b1b;padding:8px;border-radius:6px}
.plot h3{margin:0 0 6px;font-size:13px}
#filters{display:flex;gap:12px;flex-wrap:wrap;align-items:center}
#cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px;padding:12px 16px}
.card{background:#1e1e1e;border-radius:6px;padding:8px;border:2px solid transparent}
.card.unverified,.card.failed{border-color:#ff1744}
.card.approved{outline:3px solid #43a047}.card.rejected{outline:3px solid #e53935;opacity:.6}
.card img{max-width:100%;cursor:zoom-in;background:#000;min-height:60px}
.facts{font-size:12px;color:#bbb;margin:4px 0}
.tag{display:inline-block;padding:0 6px;border-radius:8px;color:#111;font-size:11px;margin:1px}
.buttons button{margin-right:6px}
#pager{padding:0 16px 16px}
#viewer{position:fixed;inset:0;background:rgba(0,0,0,.9);display:none;align-items:center;justify-content:center;z-index:3}
#viewer img{max-width:95vw;max-height:95vh}
</style></head><body>
{{banner}}
<header>
 <div id="filters">
  <strong>pixelscrub review</strong>
  <label><input type="checkbox" id="f-review"> needs review only</label>
  <label><input type="checkbox" id="f-failed"> failed only</label>
  <label>reason <select id="f-reason"><option value="">any</option></select></label>
  <label>modality <select id="f-modality"><option value="">any</option></select></label>
  <label>device <select id="f-device"><option value="">any</option></select></label>
  <span id="count"></span>
  <button id="download">download decisions</button>
 </div>
</header>
<div id="summary"></div>
<div id="cards"></div>
<div id="pager"><button id="more">show more</button></div>
<div id="viewer"><img alt="full size"></div>
<script src="data.js"></script>
<script>
(function(){
const R = window.REVIEW, PAGE = 60;
let shown = PAGE, decisions = {};
const $ = s => document.querySelector(s);
function el(tag, attrs, text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function options(sel, values){[...new Set(values)].filter(Boolean).sort().forEach(v=>sel.appendChild(el('option',{value:v},v)));}
options($('#f-reason'), R.cards.flatMap(c=>c.reasons||[]));
options($('#f-modality'), R.cards.map(c=>c.modality));
options($('#f-device'), R.cards.map(c=>c.device));
function bars(title, data, colors){
  const box=el('div',{class:'plot'}); box.appendChild(el('h3',{},title));
  const entries=Object.entries(data||{}).sort((a,b)=>b[1]-a[1]); const max=Math.max(1,...entries.map(e=>e[1]));
  const svg=document.createElementNS('http://www.w3.org/2000/svg','svg'); svg.setAttribute('width',310); svg.setAttribute('height',16*entries.length+4);
  entries.forEach(([k,v],i)=>{const r=document.createElementNS(svg.namespaceURI,'rect');r.setAttribute('x',170);r.setAttribute('y',i*16+2);r.setAttribute('height',12);r.setAttribute('width',130*v/max);r.setAttribute('fill',(colors&&colors[k])||'#90a4ae');svg.appendChild(r);
    const t=document.createElementNS(svg.namespaceURI,'text');t.setAttribute('x',0);t.setAttribute('y',i*16+12);t.setAttribute('fill','#ddd');t.setAttribute('font-size','11');t.textContent=(k.length>24?k.slice(0,23)+'…':k)+' '+(Math.round(v*10)/10);svg.appendChild(t);});
  box.appendChild(svg); return box;}
const s=R.summary, sum=$('#summary');
const facts=el('div',{class:'plot',id:'totals'}); facts.appendChild(el('h3',{},'run'));
facts.appendChild(el('div',{},`files ${s.files_in} · clean ${s.clean} · unverified ${s.unverified} · unchecked by request ${s.written_unchecked} · failed ${s.failed} · skipped ${s.skipped}`));
facts.appendChild(el('div',{},`frames ${s.frames} (checked ${s.frames_checked}) · wall ${Math.round((s.wall_seconds||0)*10)/10} s`));
sum.appendChild(facts);
sum.appendChild(bars('redactions per reason', R.hits_by_reason, R.groups));
sum.appendChild(bars('files per device', R.files_by_device));
sum.appendChild(bars('seconds per stage', R.seconds_by_stage));
function visible(){
  const rv=$('#f-review').checked, fl=$('#f-failed').checked, re=$('#f-reason').value, mo=$('#f-modality').value, de=$('#f-device').value;
  return R.cards.filter(c=>(!rv||c.status==='unverified'||c.status==='failed'||c.review>0)&&(!fl||c.status==='failed')&&(!re||(c.reasons||[]).includes(re))&&(!mo||c.modality===mo)&&(!de||c.device===de));}
function card(c){
  const d=el('div',{class:'card '+c.status+(decisions[c.key]?' '+decisions[c.key]:''),'data-key':c.key,'data-status':c.status});
  d.appendChild(el('div',{},`#${c.n} · ${c.status}`));
  if(c.thumb){const i=el('img',{src:c.thumb,loading:'lazy',alt:'scrubbed image','data-full':c.full});i.onclick=()=>{$('#viewer img').src=c.full;$('#viewer').style.display='flex';};d.appendChild(i);}
  if(c.original){const o=el('img',{src:c.original,loading:'lazy',alt:'original image (PHI)',class:'original'});d.appendChild(o);}
  if(c.reason)d.appendChild(el('div',{class:'facts'},'failed: '+c.reason));
  if(c.status!=='failed'){
    d.appendChild(el('div',{class:'facts'},`${c.modality||''} ${c.device||''}`));
    d.appendChild(el('div',{class:'facts'},`syntax ${c.ts_in} → ${c.ts_out} · frames checked ${c.checked}/${c.frames} · BurnedInAnnotation ${c.burned_in||'-'}`));
    if(c.review)d.appendChild(el('div',{class:'facts'},`${c.review} region(s) need review (unread text)`));
    if(c.strip&&c.strip.length>1)d.appendChild(el('div',{class:'facts'},'frames shown: '+c.strip.join(', ')));}
  const tags=el('div',{}); (c.reasons||[]).forEach(r=>{const t=el('span',{class:'tag'},r);t.style.background=R.groups[r]||'#bbb';tags.appendChild(t);}); d.appendChild(tags);
  if(c.text&&c.text.length)d.appendChild(el('div',{class:'facts ocr-text'},'OCR: '+c.text.join(' | ')));
  const b=el('div',{class:'buttons'});
  [['approve','approved'],['reject','rejected']].forEach(([label,value])=>{const x=el('button',{class:label},label);x.onclick=()=>{decisions[c.key]=value;render();};b.appendChild(x);});
  d.appendChild(b); return d;}
function render(){
  const list=visible(), box=$('#cards'); box.textContent='';
  list.slice(0,shown).forEach(c=>box.appendChild(card(c)));
  $('#count').textContent=`${list.length} of ${R.cards.length} files`;
  $('#more').style.display=list.length>shown?'':'none';}
['#f-review','#f-failed','#f-reason','#f-modality','#f-device'].forEach(s=>$(s).onchange=()=>{shown=PAGE;render();});
$('#more').onclick=()=>{shown+=PAGE;render();};
$('#viewer').onclick=()=>{$('#viewer').style.display='none';};
$('#download').onclick=()=>{const blob=new Blob([JSON.stringify({version:1,decisions},null,1)],{type:'application/json'});
  const a=el('a',{href:URL.createObjectURL(blob),download:'review-decisions.json'});document.body.appendChild(a);a.click();a.remove();};
render();
})();
</script></body></html>
"""
