/* The interactive timeline (render/timeline_page.py puts this file inline, after the timeline as JSON).

   Everything is redrawn as SVG from the current view on each zoom or move: only what is
   visible is drawn, and every kind of label is thinned to what the pixels can hold at
   this zoom (bar numbers every 2^k bars, names only where they fit), so a 3-hour mix
   stays readable from the whole file down to single beats. Text widths come from a
   canvas in the page's own font, so the thinning matches what the browser draws. */
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("timeline-data").textContent);
  const audio = document.getElementById("player");
  const overview = document.getElementById("overview");
  const detail = document.getElementById("detail");
  const position = document.getElementById("position");
  const clicksBox = document.getElementById("clicks");
  const followBox = document.getElementById("follow");

  const D = Math.max(data.duration, 0.001);
  const LEFT = 100, RIGHT = 10, RULER = 22, LANE_GAP = 3, OVERVIEW_H = 58;
  const GAP = 6, PAD = 3;  // px between neighbouring labels; from a mark to its label
  const MIN_MARK_PX = 4;   // closer beat or bar lines merge into a grey wash
  const MIN_SPAN_S = Math.min(D, 1.0);
  const NORMAL = "11px sans-serif", BOLD = "bold 11px sans-serif", SMALL = "10px sans-serif";
  const TIME_STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const COLOURS = {bar: "#d1495b", beat: "#a8a8a8", wave: "#4a6fa5", tempo: "#2e7d32", loudness: "#6a4c93",
                   guide: "#ececec", zebra: "#f6f6f6", playhead: "#e53935", view: "#1e88e5"};
  const BEAT_HZ = 1000, DOWNBEAT_HZ = 1600, BEAT_GAIN = 0.35, DOWNBEAT_GAIN = 0.7, CLICK_S = 0.03;
  // Clicks are scheduled LOOKAHEAD_S ahead every SCHEDULE_MS; one found up to LATE_S late (a busy page, the
  // downbeat a seek lands on) still sounds, at once; a later one is dropped rather than heard off the beat.
  const LOOKAHEAD_S = 0.12, SCHEDULE_MS = 25, LATE_S = 0.1;

  const beatsT = data.beats.t, beatsPos = data.beats.pos;
  const barsN = data.bars.n, barsT = data.bars.t, barsD = data.bars.d;
  const lanes = [["sections", 30], ["bars", 24], ["beats", 18], [data.wave ? "waveform" : "energy", 64],
                 ["chords", 26], ["keys", 24], ["tempo", 60], ["loudness", 60]];
  const laneTop = {};
  let detailHeight = RULER;
  for (const [name, h] of lanes) {
    laneTop[name] = detailHeight;
    detailHeight += h + LANE_GAP;
  }
  const laneHeight = Object.fromEntries(lanes);

  let view = {start: 0, end: D};
  let pending = false, renders = 0;
  const stats = {beats: 0, downbeats: 0};

  // ---- helpers ---------------------------------------------------------------------------------

  const ctx = document.createElement("canvas").getContext("2d");
  const widths = new Map();
  function measure(text, font) {
    const key = font + "|" + text;
    let w = widths.get(key);
    if (w === undefined) {
      ctx.font = font;
      w = ctx.measureText(text).width;
      widths.set(key, w);
    }
    return w;
  }

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function lowerBound(arr, t) {  // first index with arr[i] >= t
    let lo = 0, hi = arr.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arr[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function median(values) {
    if (!values.length) return Infinity;
    const sorted = values.slice().sort((a, b) => a - b);
    return sorted[sorted.length >> 1];
  }

  function diffs(times) {
    const out = [];
    for (let i = 1; i < times.length; i++) out.push(times[i] - times[i - 1]);
    return out;
  }

  const beatStep = median(diffs(beatsT)), barStep = median(diffs(barsT));

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function f1(v) { return Math.round(v * 10) / 10; }

  function clock(t, step) {
    const tenths = step !== undefined && step < 1;
    const whole = tenths ? Math.floor(t) : Math.round(t);
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    let text = (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    if (tenths) text += "." + Math.floor((t - whole) * 10 + 1e-6);
    return text;
  }

  function contentWidth(svg) { return Math.max((svg.clientWidth || 1000) - LEFT - RIGHT, 10); }
  function pps() { return contentWidth(detail) / (view.end - view.start); }
  function xOf(t) { return LEFT + (t - view.start) * pps(); }
  function tOf(x) { return view.start + (x - LEFT) / pps(); }

  /* A row of labels laid out left to right: a label that would touch the one before it, or leave the
     drawing area, is refused. */
  function Row(right) { this.last = -Infinity; this.right = right; }
  Row.prototype.take = function (left, width) {
    if (left < LEFT || left < this.last + GAP || left + width > this.right) return false;
    this.last = left + width;
    return true;
  };

  function text(x, y, content, cls, extra) {
    return `<text x="${f1(x)}" y="${f1(y)}"${cls ? ` class="${cls}"` : ""}${extra || ""}>${esc(content)}</text>`;
  }

  function emptyLane(name, message) {
    return text(LEFT + 8, laneTop[name] + laneHeight[name] / 2, message, "empty");
  }

  // ---- lanes -----------------------------------------------------------------------------------

  function ruler(right) {
    const p = pps(), widest = measure(clock(view.end, 0.1), NORMAL);
    const step = TIME_STEPS.find(s => s * p >= Math.max(80, widest + GAP + PAD)) || TIME_STEPS[TIME_STEPS.length - 1];
    const out = [], row = new Row(right);
    for (let k = Math.ceil(view.start / step - 1e-9); k * step <= view.end + 1e-9; k++) {
      const t = Math.round(k * step * 10) / 10, x = xOf(t), label = clock(t, step);
      out.push(`<path d="M${f1(x)} ${RULER - 6}V${RULER}" stroke="#888"/>`);
      if (row.take(x + PAD, measure(label, NORMAL))) out.push(text(x + PAD, RULER / 2 - 2, label, "", ' data-lane="ruler"'));
    }
    return out.join("");
  }

  function spans(items, name, right, labelOf, fontOf) {
    /* Bands (sections, keys): each named in the middle of its visible part, when the name fits. */
    const top = laneTop[name], h = laneHeight[name], out = [];
    if (!items.length) return emptyLane(name, name === "keys" ? "no key" : "no " + name);
    items.forEach((item, i) => {
      const [start, end] = item;
      if (end < view.start || start > view.end) return;
      const x0 = Math.max(xOf(start), LEFT), x1 = Math.min(xOf(end), right);
      out.push(`<rect x="${f1(x0)}" y="${top + 1}" width="${f1(Math.max(x1 - x0 - 1, 0.5))}" height="${h - 2}" ` +
               `fill="${item[item.length - 1]}" data-${name}="${i}"/>`);
      for (const label of labelOf(item)) {
        if (measure(label, fontOf) + 2 * PAD <= x1 - x0) {
          out.push(text((x0 + x1) / 2, top + h / 2, label, "bold", ` text-anchor="middle" data-lane="${name}"`));
          break;
        }
      }
    });
    return out.join("");
  }

  function visibleBars() {
    return [Math.max(lowerBound(barsT, view.start) - 1, 0), Math.min(lowerBound(barsT, view.end), barsT.length)];
  }

  function numberedBars(right) {
    /* Every 2^k-th bar (1, 5, 9 ... or 1, 17, 33 ...: phrase starts), k the smallest that leaves room. */
    const [i0, i1] = visibleBars();
    if (i0 >= i1) return [];
    const spacing = barStep * pps();
    const widest = measure(String(Math.max(Math.abs(barsN[i0]), Math.abs(barsN[i1 - 1]))), BOLD) + 4;
    let stride = 1;
    while (stride < barsN.length && stride * spacing < widest + GAP + PAD) stride *= 2;
    const row = new Row(right), out = [];
    for (let i = i0; i < i1; i++) {
      if ((((barsN[i] - 1) % stride) + stride) % stride !== 0) continue;
      const x = xOf(barsT[i]);
      if (row.take(x + PAD, measure(String(barsN[i]), BOLD))) out.push(i);
    }
    return out;
  }

  function barsLane(numbered) {
    const top = laneTop.bars, h = laneHeight.bars, out = [];
    if (!barsT.length) return emptyLane("bars", "no bars");
    const [i0, i1] = visibleBars(), spacing = barStep * pps();
    if (spacing >= 2) {
      for (let i = i0; i < i1; i++) {
        if (barsN[i] % 2) continue;
        out.push(`<rect x="${f1(xOf(barsT[i]))}" y="${top}" width="${f1(barsD[i] * pps())}" height="${h}" ` +
                 `fill="${COLOURS.zebra}"/>`);
      }
    }
    const marks = spacing >= MIN_MARK_PX ? Array.from({length: i1 - i0}, (_, k) => i0 + k) : numbered;
    out.push(`<path d="${marks.map(i => `M${f1(xOf(barsT[i]))} ${top}v${h}`).join("")}" stroke="${COLOURS.bar}" ` +
             `stroke-width="1.3" opacity="0.6"/>`);
    for (const i of numbered) {
      out.push(text(xOf(barsT[i]) + PAD, top + h / 2, barsN[i], "bold",
                    ` fill="${COLOURS.bar}" data-lane="bars" data-bar="${barsN[i]}"`));
    }
    return out.join("");
  }

  function beatsLane() {
    const top = laneTop.beats, h = laneHeight.beats;
    if (!beatsT.length) return emptyLane("beats", "no beats");
    const p = pps(), i0 = lowerBound(beatsT, view.start), i1 = lowerBound(beatsT, view.end + 1e-9);
    const showBeats = beatStep * p >= MIN_MARK_PX, showBars = barStep * p >= MIN_MARK_PX;
    if (!showBeats && !showBars) return emptyLane("beats", "zoom in to see beats");
    let weak = "", strong = "";
    for (let i = i0; i < i1; i++) {
      const x = f1(xOf(beatsT[i]));
      if (beatsPos[i] === 1) strong += `M${x} ${top}v${h}`;
      else if (showBeats) weak += `M${x} ${top + h * 0.35}v${h * 0.65}`;
    }
    return `<path d="${weak}" stroke="${COLOURS.beat}"/><path d="${strong}" stroke="${COLOURS.bar}" stroke-width="1.5"/>`;
  }

  function envelopeLane(name, right) {
    const top = laneTop[name], h = laneHeight[name], mid = top + h / 2, amp = h / 2 - 2;
    if (data.wave) {
      const {hop, lo, hi} = data.wave, upper = [], lower = [];
      for (let x = LEFT; x < right; x += 1) {
        const c0 = clamp(Math.floor(tOf(x) / hop), 0, lo.length), c1 = clamp(Math.floor(tOf(x + 1) / hop), c0 + 1, lo.length);
        if (c0 >= lo.length) break;
        let mn = Infinity, mx = -Infinity;
        for (let c = c0; c < c1; c++) {
          if (lo[c] !== null && lo[c] < mn) mn = lo[c];
          if (hi[c] !== null && hi[c] > mx) mx = hi[c];
        }
        if (mn === Infinity) { mn = 0; mx = 0; }
        upper.push(`${x} ${f1(mid - mx * amp)}`);
        lower.push(`${x} ${f1(mid - mn * amp)}`);
      }
      if (!upper.length) return "";
      return `<path d="M${upper.join("L")}L${lower.reverse().join("L")}Z" fill="${COLOURS.wave}" opacity="0.8"/>`;
    }
    const {hop, values} = data.energy;
    if (!values.length) return emptyLane(name, "no energy curve");
    const c0 = clamp(Math.floor(view.start / hop), 0, values.length - 1);
    const c1 = clamp(Math.ceil(view.end / hop) + 1, c0 + 1, values.length);
    let d = `M${f1(xOf(c0 * hop))} ${top + h}`;
    for (let c = c0; c < c1; c++) {
      const y = f1(top + h - (values[c] || 0) * (h - 4));
      d += `V${y}H${f1(xOf((c + 1) * hop))}`;
    }
    return `<path d="${d}V${top + h}Z" fill="${COLOURS.wave}" opacity="0.6"/>`;
  }

  function chordsLane(right) {
    /* Each name starts where its chord does, as on a lead sheet; drawn over the blocks, so a name may run on
       over a short chord whose own name is left out. */
    const top = laneTop.chords, h = laneHeight.chords, out = [], names = [], row = new Row(right);
    if (!data.chords.length) return emptyLane("chords", "no chords");
    // At most one block per pixel: a 3-hour mix has thousands of chords, a pixel shows one colour anyway.
    let drawnTo = -Infinity;
    const i0 = lowerBound(chordEnds, view.start);
    for (let i = i0; i < data.chords.length && data.chords[i][0] <= view.end; i++) {
      const [start, end, name, colour] = data.chords[i];
      const x0 = Math.max(xOf(start), LEFT), x1 = Math.min(xOf(end), right);
      if (x0 < drawnTo) continue;
      drawnTo = Math.max(x1, x0 + 1);
      out.push(`<rect x="${f1(x0)}" y="${top + 1}" width="${f1(drawnTo - x0)}" height="${h - 2}" ` +
               `fill="${colour}" stroke="#fff" stroke-width="0.5"/>`);
      if (row.take(x0 + PAD, measure(name, NORMAL))) {
        names.push(text(x0 + PAD, top + h / 2, name, "halo", ' data-lane="chords"'));
      }
    }
    return out.join("") + names.join("");
  }

  function curve(name, points, times, lo, hi, colour, end) {
    /* A step curve ([time, value] points, each value held until the next time) on a fixed scale. */
    const top = laneTop[name], h = laneHeight[name];
    const y = v => f1(top + h - 3 - (v - lo) / (hi - lo) * (h - 6));
    const i0 = Math.max(lowerBound(times, view.start) - 1, 0);
    let d = "", pen = false;
    for (let i = i0; i < points.length && points[i][0] <= view.end; i++) {
      const [t, v] = points[i], next = i + 1 < points.length ? points[i + 1][0] : end;
      if (v === null) { pen = false; continue; }
      d += (pen ? `V${y(v)}` : `M${f1(xOf(t))} ${y(v)}`) + `H${f1(xOf(next))}`;
      pen = true;
    }
    return `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.4"/>`;
  }

  function scale(values, minMargin, fraction) {
    const finite = values.filter(v => v !== null && isFinite(v));
    if (!finite.length) return null;
    const lo = Math.min(...finite), hi = Math.max(...finite), margin = Math.max(minMargin, fraction * (hi - lo));
    return [lo - margin, hi + margin, lo, hi];
  }

  const tempoScale = scale(data.tempo.map(p => p[1]), 3, 0.15);
  const loudScale = scale(data.bars.loud, 2, 0.1);
  const loudPoints = barsT.map((t, i) => [t, data.bars.loud[i]]);
  const tempoTimes = data.tempo.map(p => p[0]), chordEnds = data.chords.map(c => c[1]);
  const barsEnd = barsT.length ? barsT[barsT.length - 1] + barsD[barsD.length - 1] : D;

  function tempoLane() {
    if (!tempoScale) return emptyLane("tempo", "no tempo");
    return curve("tempo", data.tempo, tempoTimes, tempoScale[0], tempoScale[1], COLOURS.tempo, D);
  }

  function loudnessLane() {
    if (!loudScale) return emptyLane("loudness", "no loudness per bar");
    let out = curve("loudness", loudPoints, barsT, loudScale[0], loudScale[1], COLOURS.loudness, barsEnd);
    if (data.lufs !== null && data.lufs !== undefined) {
      const top = laneTop.loudness, h = laneHeight.loudness;
      const y = f1(top + h - 3 - (data.lufs - loudScale[0]) / (loudScale[1] - loudScale[0]) * (h - 6));
      out += `<path d="M${LEFT} ${y}H${xOf(D)}" stroke="${COLOURS.loudness}" stroke-dasharray="5 4" opacity="0.6"/>`;
    }
    return out;
  }

  function laneNames() {
    const out = [];
    for (const [name, h] of lanes) {
      const top = laneTop[name];
      out.push(`<rect x="0" y="${top}" width="${LEFT - 4}" height="${h}" fill="#fafafa"/>`);
      out.push(text(6, top + h / 2, name, "lane-name bold"));
    }
    const ranges = {tempo: tempoScale && [tempoScale[3], tempoScale[2], ""],
                    loudness: loudScale && [loudScale[3], loudScale[2], ""]};
    for (const [name, range] of Object.entries(ranges)) {
      if (!range) continue;
      const top = laneTop[name], h = laneHeight[name];
      out.push(text(LEFT - 6, top + 7, f1(range[0]), "range", ' text-anchor="end"'));
      out.push(text(LEFT - 6, top + h - 7, f1(range[1]), "range", ' text-anchor="end"'));
    }
    return out.join("");
  }

  // ---- drawing ---------------------------------------------------------------------------------

  function renderDetail() {
    const W = detail.clientWidth || 1000, right = W - RIGHT;
    detail.setAttribute("width", W);
    detail.setAttribute("height", detailHeight);
    const numbered = numberedBars(right);
    const guides = numbered.map(i => `M${f1(xOf(barsT[i]))} ${RULER}V${detailHeight}`).join("");
    detail.innerHTML =
      `<defs><clipPath id="lanes-clip"><rect x="${LEFT}" y="0" width="${right - LEFT}" height="${detailHeight}"/>` +
      `</clipPath></defs>` + laneNames() +
      `<g clip-path="url(#lanes-clip)"><path d="${guides}" stroke="${COLOURS.guide}"/>` +
      envelopeLane(lanes[3][0], right) + barsLane(numbered) + beatsLane() +
      spans(data.sections, "sections", right, s => [s[2] + " " + s[3], s[3]], BOLD) +
      chordsLane(right) + spans(data.keys, "keys", right, k => [k[2]], BOLD) + tempoLane() + loudnessLane() +
      `</g>` + ruler(right) +
      `<line id="playhead" y1="0" y2="${detailHeight}" stroke="${COLOURS.playhead}" stroke-width="2"/>`;
    renders += 1;
  }

  function overviewX(t) { return LEFT + t / D * contentWidth(overview); }

  function renderOverview() {
    const W = overview.clientWidth || 1000, h = OVERVIEW_H, out = [];
    overview.setAttribute("width", W);
    overview.setAttribute("height", h);
    out.push(`<rect x="0" y="0" width="${LEFT - 4}" height="${h}" fill="#fafafa"/>`);
    out.push(text(6, h / 2, "overview", "lane-name bold"));
    out.push(`<rect x="${LEFT}" y="0" width="${W - LEFT - RIGHT}" height="${h}" fill="#fcfcfc" stroke="#ddd"/>`);
    for (const s of data.sections) {
      out.push(`<rect x="${f1(overviewX(s[0]))}" y="1" width="${f1(Math.max(overviewX(s[1]) - overviewX(s[0]) - 1, 0.5))}" ` +
               `height="12" fill="${s[5]}"/>`);
    }
    const top = 16, bottom = h - 2, cols = Math.floor(W - LEFT - RIGHT);
    let d = "";
    const {hop, values} = data.energy;
    if (values.length) {
      d = `M${LEFT} ${bottom}`;
      for (let x = 0; x < cols; x++) {
        const c0 = Math.floor(x / cols * D / hop), c1 = Math.max(Math.floor((x + 1) / cols * D / hop), c0 + 1);
        let v = 0;
        for (let c = c0; c < Math.min(c1, values.length); c++) v = Math.max(v, values[c] || 0);
        d += `V${f1(bottom - v * (bottom - top))}H${LEFT + x + 1}`;
      }
      d += `V${bottom}Z`;
    }
    out.push(`<path d="${d}" fill="${COLOURS.wave}" opacity="0.55"/>`);
    out.push(`<rect id="viewport" y="0.5" height="${h - 1}" fill="${COLOURS.view}" fill-opacity="0.12" ` +
             `stroke="${COLOURS.view}" stroke-width="1.5"/>`);
    out.push(`<line id="overview-playhead" y1="0" y2="${h}" stroke="${COLOURS.playhead}" stroke-width="2"/>`);
    overview.innerHTML = out.join("");
  }

  function placeViewport() {
    const box = overview.querySelector("#viewport");
    const x0 = overviewX(view.start), x1 = overviewX(view.end);
    box.setAttribute("x", f1(x0));
    box.setAttribute("width", f1(Math.max(x1 - x0, 2)));
  }

  function render() {
    pending = false;
    renderDetail();
    placeViewport();
    placePlayhead();
  }

  function invalidate() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(render);
    }
  }

  function setView(start, end) {
    const span = clamp(end - start, MIN_SPAN_S, D);
    start = clamp(start, 0, D - span);
    view = {start: start, end: start + span};
    invalidate();
  }

  function zoomAt(t, factor) {
    const span = view.end - view.start, frac = (t - view.start) / span, next = span * factor;
    setView(t - frac * next, t - frac * next + next);
  }

  function zoomCentre(factor) { zoomAt((view.start + view.end) / 2, factor); }

  // ---- playing ---------------------------------------------------------------------------------

  let lastT = 0;

  function barAt(t) { return lowerBound(barsT, t + 1e-6) - 1; }

  function placePlayhead() {
    const t = audio.currentTime || 0, line = detail.querySelector("#playhead");
    if (line) {
      const x = xOf(t), visible = t >= view.start && t <= view.end;
      line.setAttribute("x1", f1(x));
      line.setAttribute("x2", f1(x));
      line.setAttribute("visibility", visible ? "visible" : "hidden");
    }
    const head = overview.querySelector("#overview-playhead");
    if (head) {
      head.setAttribute("x1", f1(overviewX(t)));
      head.setAttribute("x2", f1(overviewX(t)));
    }
    const i = barAt(t);
    let where = clock(t, 0.1);
    if (i >= 0 && t < barsEnd) {
      const j = lowerBound(beatsT, t + 1e-6) - 1;
      where = `bar ${barsN[i]}` + (j >= 0 && beatsPos[j] ? ` · beat ${beatsPos[j]}` : "") + " · " + where;
    }
    if (position.textContent !== where) position.textContent = where;
  }

  function tick() {
    const t = audio.currentTime || 0;
    if (!audio.paused && followBox.checked && lastT >= view.start && lastT <= view.end && t > view.end) {
      const span = view.end - view.start;
      setView(t - 0.05 * span, t + 0.95 * span);
    }
    lastT = t;
    placePlayhead();
    if (!audio.paused) requestAnimationFrame(tick);
  }

  function seek(t) {
    t = clamp(t, 0, D);
    audio.currentTime = t;
    lastT = t;
    if (t < view.start || t > view.end) {
      const span = view.end - view.start;
      setView(t - 0.05 * span, t + 0.95 * span);
    }
    placePlayhead();
    if (audio.currentSrc || audio.src) {
      const started = audio.play();
      if (started) started.catch(() => {});
    }
  }

  // Beat clicks: WebAudio oscillators scheduled a little ahead of the player's clock, the way a
  // metronome app does, so the clicks keep time however late a timer fires.
  let actx = null, nextBeat = 0;

  function resyncClicks() { nextBeat = lowerBound(beatsT, audio.currentTime || 0); }

  function click(when, downbeat) {
    const osc = actx.createOscillator(), gain = actx.createGain();
    osc.frequency.value = downbeat ? DOWNBEAT_HZ : BEAT_HZ;
    gain.gain.setValueAtTime(downbeat ? DOWNBEAT_GAIN : BEAT_GAIN, when);
    gain.gain.exponentialRampToValueAtTime(0.001, when + CLICK_S);
    osc.connect(gain).connect(actx.destination);
    osc.start(when);
    osc.stop(when + CLICK_S + 0.005);
    stats[downbeat ? "downbeats" : "beats"] += 1;
  }

  function scheduleClicks() {
    if (!actx || !clicksBox.checked || audio.paused) return;
    const now = audio.currentTime, rate = audio.playbackRate || 1, horizon = now + LOOKAHEAD_S * rate;
    // Only a jump (a seek either way) moves the next beat to the player's position: events about a seek
    // arrive after the player has moved, and a beat already scheduled must not be clicked twice.
    if ((nextBeat > 0 && beatsT[nextBeat - 1] > horizon) || (nextBeat < beatsT.length && beatsT[nextBeat] < now - 0.25)) {
      resyncClicks();
    }
    while (nextBeat < beatsT.length && beatsT[nextBeat] < horizon) {
      const t = beatsT[nextBeat];
      if (t >= now - LATE_S) click(actx.currentTime + Math.max(0, (t - now) / rate), beatsPos[nextBeat] === 1);
      nextBeat += 1;
    }
  }

  clicksBox.addEventListener("change", () => {
    if (clicksBox.checked && !actx) {
      const Context = window.AudioContext || window.webkitAudioContext;
      actx = new Context();
    }
    if (actx) actx.resume();
    resyncClicks();
  });
  setInterval(scheduleClicks, SCHEDULE_MS);
  audio.addEventListener("play", () => requestAnimationFrame(tick));
  for (const name of ["seeked", "timeupdate", "pause"]) audio.addEventListener(name, placePlayhead);
  audio.addEventListener("error", () => {
    const note = document.getElementById("audio-error");
    note.textContent = "audio not found: " + decodeURIComponent(audio.getAttribute("src") || "none linked").slice(0, 200);
    note.hidden = false;
  });

  // ---- pointer and keys ------------------------------------------------------------------------

  function laneAt(y) {
    if (y < RULER) return "ruler";
    for (const [name, h] of lanes) if (y >= laneTop[name] && y < laneTop[name] + h + LANE_GAP) return name;
    return null;
  }

  function clickAt(x, y) {
    if (x < LEFT) return;
    const t = tOf(x), lane = laneAt(y);
    if (lane === "ruler") return seek(t);
    if (lane === "sections") {
      const s = data.sections.find(s => s[0] <= t && t < s[1]);
      if (s) return seek(s[0]);
    }
    const i = barAt(t);
    seek(i >= 0 && t < barsT[i] + barsD[i] ? barsT[i] : t);
  }

  let drag = null;
  detail.addEventListener("pointerdown", e => {
    const box = detail.getBoundingClientRect();
    drag = {x: e.clientX, y: e.clientY - box.top, left: box.left, view: Object.assign({}, view), moved: false};
    detail.setPointerCapture(e.pointerId);
  });
  function describe(t) {
    /* What is under the pointer, named even where the labels were thinned out at this zoom. */
    const parts = [clock(t, 0.1)], i = barAt(t);
    if (i >= 0 && t < barsT[i] + barsD[i]) parts.unshift(`bar ${barsN[i]}`);
    const chord = data.chords[lowerBound(chordEnds, t + 1e-6)];
    if (chord && chord[0] <= t) parts.push(chord[2]);
    for (const band of [data.sections, data.keys]) {
      const found = band.find(b => b[0] <= t && t < b[1]);
      if (found) parts.push(band === data.sections ? found[2] + " " + found[3] : found[2]);
    }
    return "under the pointer: " + parts.join(" · ");
  }

  const hover = document.getElementById("hover");
  detail.addEventListener("pointerleave", () => { hover.textContent = ""; });
  detail.addEventListener("pointermove", e => {
    if (!drag) {
      const x = e.clientX - detail.getBoundingClientRect().left;
      hover.textContent = x >= LEFT ? describe(tOf(x)) : "";
      return;
    }
    const dx = e.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (drag.moved) {
      detail.classList.add("dragging");
      const shift = dx / (contentWidth(detail) / (drag.view.end - drag.view.start));
      setView(drag.view.start - shift, drag.view.end - shift);
    }
  });
  detail.addEventListener("pointerup", e => {
    if (drag && !drag.moved) clickAt(e.clientX - drag.left, drag.y);
    drag = null;
    detail.classList.remove("dragging");
  });
  detail.addEventListener("wheel", e => {
    e.preventDefault();
    const span = view.end - view.start;
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const shift = (e.deltaX || e.deltaY) / pps();
      setView(view.start + shift, view.end + shift);
    } else {
      const x = e.clientX - detail.getBoundingClientRect().left;
      zoomAt(x < LEFT ? view.start + span / 2 : tOf(x), Math.exp(clamp(e.deltaY, -300, 300) * 0.002));
    }
  }, {passive: false});

  function centreOn(e) {
    const x = e.clientX - overview.getBoundingClientRect().left, span = view.end - view.start;
    const t = (x - LEFT) / contentWidth(overview) * D;
    setView(t - span / 2, t + span / 2);
  }
  let overviewDrag = false;
  overview.addEventListener("pointerdown", e => {
    overviewDrag = true;
    overview.setPointerCapture(e.pointerId);
    centreOn(e);
  });
  overview.addEventListener("pointermove", e => { if (overviewDrag) centreOn(e); });
  overview.addEventListener("pointerup", () => { overviewDrag = false; });

  // The buttons give the focus back, so space goes on playing and pausing instead of pressing them again.
  const buttons = {"zoom-in": () => zoomCentre(0.5), "zoom-out": () => zoomCentre(2), "zoom-fit": () => setView(0, D)};
  for (const [id, action] of Object.entries(buttons)) {
    document.getElementById(id).addEventListener("click", e => { action(); e.currentTarget.blur(); });
  }
  document.addEventListener("keydown", e => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLButtonElement ||
        e.target === audio || e.ctrlKey || e.metaKey || e.altKey) return;
    const span = view.end - view.start;
    const actions = {
      " ": () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()),
      "+": () => zoomCentre(0.5), "=": () => zoomCentre(0.5), "-": () => zoomCentre(2), "0": () => setView(0, D),
      ArrowLeft: () => setView(view.start - span / 5, view.end - span / 5),
      ArrowRight: () => setView(view.start + span / 5, view.end + span / 5),
    };
    if (actions[e.key]) {
      e.preventDefault();
      actions[e.key]();
    }
  });
  window.addEventListener("resize", () => { renderOverview(); invalidate(); });

  renderOverview();
  render();

  // For scripts and the browser tests: the view, the lanes' places and the clicks played so far.
  window.beatwatch = {
    get view() { return {start: view.start, end: view.end}; },
    get settled() { return !pending; },
    get renders() { return renders; },
    clicks: stats,
    setView: setView,
    zoomAt: zoomAt,
    seek: seek,
    lane(name) { return {top: laneTop[name], height: laneHeight[name]}; },
    x(t) { return xOf(t); },
    bar(n) { const i = barsN.indexOf(n); return i < 0 ? null : {time: barsT[i], duration: barsD[i]}; },
  };
})();
