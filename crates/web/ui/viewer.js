// The CT viewer: an axial viewport on a canvas (window/level through a lookup table, zoom,
// pan, slice scrolling by wheel, keys and scrollbar, HU under the cursor), AI nodule markers
// and the SEG outline as toggleable overlays, a line tool measuring in mm, and coronal and
// sagittal reformats through the finding under review, all from one volume in memory.

import { t } from './i18n.js';

/** Window presets: [centre, width] in HU. */
export const PRESETS = {
  lung: [-600, 1500],
  mediastinum: [40, 400],
  bone: [400, 1800],
};

const STATUS_COLOR = {
  pending: '#ffb020', accepted: '#35d07f', corrected: '#4fa3ff', added: '#c77dff', rejected: '#8a8f98',
};

/** Outline pixels of a run-length mask: Int32Array of pixel indices on the mask border. */
function outline(runs, rows, cols) {
  const n = rows * cols;
  const mask = new Uint8Array(n);
  for (let k = 0; k + 1 < runs.length; k += 2) {
    const s = Math.max(0, runs[k]);
    const e = Math.min(n, runs[k] + runs[k + 1]);
    mask.fill(1, s, e);
  }
  const out = [];
  for (let k = 0; k + 1 < runs.length; k += 2) {
    const s = Math.max(0, runs[k]);
    const e = Math.min(n, runs[k] + runs[k + 1]);
    for (let p = s; p < e; p++) {
      const x = p % cols;
      const y = (p - x) / cols;
      if (x === 0 || y === 0 || x === cols - 1 || y === rows - 1
        || !mask[p - 1] || !mask[p + 1] || !mask[p - cols] || !mask[p + cols]) out.push(p);
    }
  }
  return Int32Array.from(out);
}

function hexColor(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
  const v = m ? parseInt(m[1], 16) : 0xffff00;
  // RGBA little-endian in a Uint32 pixel: 0xAABBGGRR.
  return (0xff << 24 | (v & 0xff) << 16 | (v >> 8 & 0xff) << 8 | v >> 16) >>> 0;
}

/** The viewer of one volume, built into `root`. */
export class Viewer {
  constructor(root, volume) {
    this.root = root;
    this.vol = volume;
    this.slice = volume.n >> 1;
    [this.wc, this.ww] = PRESETS.lung;
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.tool = 'wl';
    this.showMarkers = true;
    this.showSeg = true;
    this.findings = [];
    this.selectedId = null;
    this.seg = null; // { colors: Map(segment -> color), bySlice: Map(slice -> [{segment, runs}]) }
    this.segCache = new Map();
    this.lines = []; // measurement lines [{a:[c,r], b:[c,r], slice, color, label}]
    this.pendingLine = null;
    this.onLine = null;
    this.onSelect = null;
    this.cursor = null;
    this.frameLog = null;
    this.wheelAcc = 0;
    this.build();
    this.lut = new Uint32Array(65536);
    this.buildLut();
    this.volListener = (i) => {
      if (i === this.slice) this.requestRender();
      this.loadedChanged();
    };
    volume.listeners.push(this.volListener);
    this.requestRender();
  }

  build() {
    const r = this.root;
    r.classList.add('viewer');
    r.innerHTML = `
      <div class="vp-toolbar">
        <span class="group" role="group">
          <button data-preset="lung" data-i18n="viewer.preset.lung" title="1"></button>
          <button data-preset="mediastinum" data-i18n="viewer.preset.mediastinum" title="2"></button>
          <button data-preset="bone" data-i18n="viewer.preset.bone" title="3"></button>
        </span>
        <span class="group" role="group">
          <button data-tool="wl" data-i18n="viewer.tool.wl" title="W"></button>
          <button data-tool="pan" data-i18n="viewer.tool.pan" title="P"></button>
          <button data-tool="zoom" data-i18n="viewer.tool.zoom" title="Z"></button>
          <button data-tool="line" data-i18n="viewer.tool.line" title="L"></button>
        </span>
        <span class="group" role="group">
          <label><input type="checkbox" data-toggle="markers" checked> <span data-i18n="viewer.markers"></span></label>
          <label><input type="checkbox" data-toggle="seg" checked> <span data-i18n="viewer.seg"></span></label>
        </span>
        <button data-action="reset" data-i18n="viewer.reset" title="0"></button>
      </div>
      <div class="vp-main">
        <canvas class="vp-canvas" tabindex="0"></canvas>
        <div class="vp-info tl"></div>
        <div class="vp-info tr"></div>
        <div class="vp-info bl"></div>
        <div class="vp-info br"></div>
      </div>
      <input class="vp-scroll" type="range" min="0" value="0" step="1">
    `;
    this.canvas = r.querySelector('.vp-canvas');
    this.ctx = this.canvas.getContext('2d');
    this.scroll = r.querySelector('.vp-scroll');
    this.scroll.max = String(this.vol.n - 1);
    this.scroll.setAttribute('aria-label', 'slice');
    this.info = {
      tl: r.querySelector('.vp-info.tl'), tr: r.querySelector('.vp-info.tr'),
      bl: r.querySelector('.vp-info.bl'), br: r.querySelector('.vp-info.br'),
    };
    this.off = document.createElement('canvas');
    this.off.width = this.vol.cols;
    this.off.height = this.vol.rows;
    this.offCtx = this.off.getContext('2d');
    this.img = this.offCtx.createImageData(this.vol.cols, this.vol.rows);
    this.img32 = new Uint32Array(this.img.data.buffer);
    this.segCanvas = document.createElement('canvas');
    this.segCanvas.width = this.vol.cols;
    this.segCanvas.height = this.vol.rows;
    this.segCtx = this.segCanvas.getContext('2d');
    this.segImg = this.segCtx.createImageData(this.vol.cols, this.vol.rows);
    this.segImg32 = new Uint32Array(this.segImg.data.buffer);

    r.querySelectorAll('[data-preset]').forEach((b) => b.addEventListener('click', () => this.preset(b.dataset.preset)));
    r.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => this.setTool(b.dataset.tool)));
    r.querySelector('[data-toggle="markers"]').addEventListener('change', (e) => this.setMarkers(e.target.checked));
    r.querySelector('[data-toggle="seg"]').addEventListener('change', (e) => this.setSeg(e.target.checked));
    r.querySelector('[data-action="reset"]').addEventListener('click', () => this.resetView());
    this.scroll.addEventListener('input', () => this.setSlice(Number(this.scroll.value)));
    this.canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.canvas.addEventListener('pointerdown', (e) => this.onDown(e));
    this.canvas.addEventListener('pointermove', (e) => this.onMove(e));
    this.canvas.addEventListener('pointerup', (e) => this.onUp(e));
    this.canvas.addEventListener('pointerleave', () => { this.cursor = null; this.updateInfo(); });
    this.canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    this.canvas.addEventListener('dblclick', () => this.resetView());
    this.resizeObs = new ResizeObserver(() => this.resize());
    this.resizeObs.observe(this.canvas);
    this.setTool('wl');
  }

  destroy() {
    this.resizeObs.disconnect();
    this.vol.listeners = this.vol.listeners.filter((f) => f !== this.volListener);
    cancelAnimationFrame(this.raf);
  }

  /** Matches the canvas to its CSS size; returns whether it changed. */
  fitCanvas() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (w === this.canvas.width && h === this.canvas.height) return false;
    this.canvas.width = w;
    this.canvas.height = h;
    return true;
  }

  resize() {
    if (this.fitCanvas()) this.requestRender();
  }

  // ---- state changes ----

  setSlice(i) {
    const s = Math.min(Math.max(Math.round(i), 0), this.vol.n - 1);
    if (s === this.slice) return;
    this.slice = s;
    this.requestRender();
  }

  preset(name) {
    const p = PRESETS[name];
    if (!p) return;
    [this.wc, this.ww] = p;
    this.buildLut();
    this.requestRender();
    this.reformatDirty = true;
  }

  setWindow(wc, ww) {
    this.wc = Math.round(wc);
    this.ww = Math.max(1, Math.round(ww));
    this.buildLut();
    this.requestRender();
    this.reformatDirty = true;
  }

  setTool(tool) {
    this.tool = tool;
    this.root.querySelectorAll('[data-tool]').forEach((b) => b.classList.toggle('active', b.dataset.tool === tool));
    this.canvas.dataset.tool = tool;
  }

  setMarkers(on) {
    this.showMarkers = on;
    this.root.querySelector('[data-toggle="markers"]').checked = on;
    this.requestRender();
  }

  setSeg(on) {
    this.showSeg = on;
    this.root.querySelector('[data-toggle="seg"]').checked = on;
    this.requestRender();
  }

  resetView() {
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.requestRender();
  }

  /** The AI and doctor findings to mark (review API `Finding`s). */
  setFindings(findings, selectedId) {
    this.findings = findings || [];
    if (selectedId !== undefined) this.selectedId = selectedId;
    this.requestRender();
    this.reformatDirty = true;
  }

  /** The SEG overlay from `/api/studies/{s}/seg-overlay`. */
  setSegOverlay(ov) {
    if (!ov || ov.rows !== this.vol.rows || ov.columns !== this.vol.cols) {
      this.seg = null;
      return;
    }
    const colors = new Map((ov.segments || []).map((s) => [s.number, hexColor(s.color)]));
    const bySlice = new Map();
    for (const [sop, list] of Object.entries(ov.slices || {})) {
      const i = this.vol.sliceOf(sop);
      if (i >= 0) bySlice.set(i, list);
    }
    this.seg = { colors, bySlice };
    this.segCache.clear();
    this.requestRender();
  }

  /** Jumps to a finding: its centre slice, centred in the viewport. */
  focusFinding(f) {
    const m = f && (f.current || f.ai);
    if (!m) return;
    this.selectedId = f.id;
    const [cx, cy, cz] = this.voxelOf(m);
    this.slice = Math.min(Math.max(Math.round(cz), 0), this.vol.n - 1);
    this.zoom = Math.max(this.zoom, 2);
    const s = this.scale();
    this.panX = -(cx + 0.5 - this.vol.cols / 2) * this.vol.colSpacing * s;
    this.panY = -(cy + 0.5 - this.vol.rows / 2) * this.vol.rowSpacing * s;
    this.reformatDirty = true;
    this.requestRender();
  }

  /** Voxel centre [col,row,slice] of a finding's measures (from center_voxel, else world). */
  voxelOf(m) {
    if (Array.isArray(m.center_world) && m.center_world.length === 3) {
      const v = this.vol.toVoxel(m.center_world);
      if (v.every(Number.isFinite)) return v;
    }
    if (Array.isArray(m.center_voxel) && m.center_voxel.length === 3) return m.center_voxel.map(Number);
    return [this.vol.cols / 2, this.vol.rows / 2, this.slice];
  }

  /** Lets the next left-button drag draw a line; `cb` gets the line in voxel and world coordinates. */
  drawLine(cb) {
    this.onLine = cb;
    this.prevTool = this.tool === 'line' ? this.prevTool || 'wl' : this.tool;
    this.setTool('line');
  }

  cancelLine() {
    this.onLine = null;
    this.pendingLine = null;
    if (this.prevTool) this.setTool(this.prevTool);
    this.requestRender();
  }

  // ---- geometry ----

  /** Screen pixels per mm at zoom 1 (the image fits the canvas). */
  fitScale() {
    const { cols, rows, colSpacing, rowSpacing } = this.vol;
    return Math.min(this.canvas.width / (cols * colSpacing), this.canvas.height / (rows * rowSpacing));
  }

  scale() {
    return this.fitScale() * this.zoom;
  }

  /** Canvas pixel of image position (col,row) (pixel corners at integers). */
  toScreen(col, row) {
    const s = this.scale();
    return [
      (col - this.vol.cols / 2) * this.vol.colSpacing * s + this.canvas.width / 2 + this.panX,
      (row - this.vol.rows / 2) * this.vol.rowSpacing * s + this.canvas.height / 2 + this.panY,
    ];
  }

  toImage(x, y) {
    const s = this.scale();
    return [
      (x - this.canvas.width / 2 - this.panX) / (this.vol.colSpacing * s) + this.vol.cols / 2,
      (y - this.canvas.height / 2 - this.panY) / (this.vol.rowSpacing * s) + this.vol.rows / 2,
    ];
  }

  eventPos(e) {
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.canvas.width / (r.width || 1);
    return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr];
  }

  // ---- input ----

  onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey) {
      this.zoom = Math.min(20, Math.max(0.25, this.zoom * Math.exp(-e.deltaY / 500)));
      this.requestRender();
      return;
    }
    const d = e.deltaMode === 0 ? e.deltaY : e.deltaY * 40;
    if (Math.abs(d) >= 40) {
      this.wheelAcc = 0;
      this.setSlice(this.slice + Math.sign(d));
    } else {
      this.wheelAcc += d;
      if (Math.abs(this.wheelAcc) >= 40) {
        this.setSlice(this.slice + Math.sign(this.wheelAcc));
        this.wheelAcc = 0;
      }
    }
  }

  onDown(e) {
    this.canvas.focus({ preventScroll: true });
    this.canvas.setPointerCapture(e.pointerId);
    const [x, y] = this.eventPos(e);
    let mode = this.tool;
    if (e.button === 1 || (e.button === 0 && e.shiftKey)) mode = 'pan';
    else if (e.button === 2) mode = 'zoom';
    if (mode === 'line' && e.button === 0) {
      const p = this.toImage(x, y);
      this.pendingLine = { a: p, b: p, slice: this.slice };
    } else if (e.button === 0 && this.showMarkers && this.tool !== 'line') {
      const hit = this.markerAt(x, y);
      if (hit) {
        this.selectedId = hit.id;
        if (this.onSelect) this.onSelect(hit);
        this.requestRender();
      }
    }
    this.drag = { mode, x, y, wc: this.wc, ww: this.ww, zoom: this.zoom, panX: this.panX, panY: this.panY };
  }

  onMove(e) {
    const [x, y] = this.eventPos(e);
    this.cursor = this.toImage(x, y);
    const d = this.drag;
    if (d) {
      const dx = x - d.x, dy = y - d.y;
      if (d.mode === 'wl') this.setWindow(d.wc - dy * 2, d.ww + dx * 4);
      else if (d.mode === 'pan') {
        this.panX = d.panX + dx;
        this.panY = d.panY + dy;
        this.requestRender();
      } else if (d.mode === 'zoom') {
        this.zoom = Math.min(20, Math.max(0.25, d.zoom * Math.exp(-dy / 200)));
        this.requestRender();
      } else if (d.mode === 'line' && this.pendingLine) {
        this.pendingLine.b = this.cursor;
        this.requestRender();
      }
    }
    this.updateInfo();
  }

  onUp(e) {
    const d = this.drag;
    this.drag = null;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    if (d && d.mode === 'line' && this.pendingLine) {
      const l = this.pendingLine;
      this.pendingLine = null;
      const mm = this.vol.inPlaneMm(l.a, l.b);
      if (mm < 0.5) {
        this.requestRender();
        return;
      }
      const line = {
        a: l.a, b: l.b, slice: l.slice, mm,
        world: [this.vol.toWorld(l.a[0], l.a[1], l.slice), this.vol.toWorld(l.b[0], l.b[1], l.slice)],
        sop: this.vol.slices[l.slice].sop,
      };
      if (this.onLine) {
        const cb = this.onLine;
        this.onLine = null;
        if (this.prevTool) this.setTool(this.prevTool);
        cb(line);
      } else {
        this.lines.push({ ...line, color: '#ffe066' });
      }
      this.requestRender();
    }
  }

  markerAt(x, y) {
    let best = null;
    let bestD = Infinity;
    for (const f of this.findings) {
      const m = f.current || f.ai;
      if (!m) continue;
      const [cx, cy, cz] = this.voxelOf(m);
      const r = Math.max(m.long_axis_mm || 6, 6) / 2 + 3;
      if (Math.abs(cz - this.slice) * this.vol.sliceSpacing > r) continue;
      const [sx, sy] = this.toScreen(cx + 0.5, cy + 0.5);
      const d = Math.hypot(sx - x, sy - y);
      const rpx = r * this.scale();
      if (d <= rpx + 4 && d < bestD) {
        best = f;
        bestD = d;
      }
    }
    return best;
  }

  /** Handles a viewer key; returns whether it was used. */
  key(e) {
    const k = e.key;
    const page = Math.max(1, Math.round(this.vol.n / 10));
    switch (k) {
      case 'ArrowUp': this.setSlice(this.slice - 1); return true;
      case 'ArrowDown': this.setSlice(this.slice + 1); return true;
      case 'PageUp': this.setSlice(this.slice - page); return true;
      case 'PageDown': this.setSlice(this.slice + page); return true;
      case 'Home': this.setSlice(0); return true;
      case 'End': this.setSlice(this.vol.n - 1); return true;
      case '1': this.preset('lung'); return true;
      case '2': this.preset('mediastinum'); return true;
      case '3': this.preset('bone'); return true;
      case 's': case 'S': this.setSeg(!this.showSeg); return true;
      case 'm': case 'M': this.setMarkers(!this.showMarkers); return true;
      case 'l': case 'L': this.setTool('line'); return true;
      case 'w': case 'W': this.setTool('wl'); return true;
      case 'p': case 'P': this.setTool('pan'); return true;
      case 'z': case 'Z': this.setTool('zoom'); return true;
      case '0': this.resetView(); return true;
      case 'Escape':
        if (this.onLine || this.pendingLine) { this.cancelLine(); return true; }
        if (this.lines.length) { this.lines = []; this.requestRender(); return true; }
        return false;
      default: return false;
    }
  }

  // ---- rendering ----

  buildLut() {
    const lo = this.wc - this.ww / 2;
    const k = 255 / this.ww;
    const lut = this.lut;
    for (let i = 0; i < 65536; i++) {
      let g = ((i - 32768) - lo) * k;
      g = g < 0 ? 0 : g > 255 ? 255 : g | 0;
      lut[i] = (0xff000000 | g << 16 | g << 8 | g) >>> 0;
    }
  }

  requestRender() {
    if (this.raf) return;
    this.raf = requestAnimationFrame((ts) => {
      this.raf = 0;
      this.render(ts);
    });
  }

  render(ts) {
    const { ctx, canvas, vol } = this;
    this.fitCanvas();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const i = this.slice;
    const [x0, y0] = this.toScreen(0, 0);
    const [x1, y1] = this.toScreen(vol.cols, vol.rows);
    if (vol.loaded[i]) {
      const n = vol.rows * vol.cols;
      const src = vol.data;
      const off = i * n;
      const out = this.img32;
      const lut = this.lut;
      for (let p = 0; p < n; p++) out[p] = lut[src[off + p] + 32768];
      this.offCtx.putImageData(this.img, 0, 0);
      ctx.imageSmoothingEnabled = this.zoom < 3;
      ctx.drawImage(this.off, x0, y0, x1 - x0, y1 - y0);
      if (this.showSeg) this.drawSeg(x0, y0, x1 - x0, y1 - y0);
    } else {
      ctx.fillStyle = '#888';
      ctx.font = `${Math.round(14 * (window.devicePixelRatio || 1))}px sans-serif`;
      ctx.textAlign = 'center';
      ctx.fillText(t('viewer.loadingSlice'), canvas.width / 2, canvas.height / 2);
    }
    if (this.showMarkers) this.drawMarkers();
    this.drawLines();
    if (Number(this.scroll.value) !== i) this.scroll.value = String(i);
    this.root.dataset.slice = String(i);
    this.root.dataset.sop = vol.slices[i] ? vol.slices[i].sop : '';
    this.root.dataset.canvas = `${canvas.width}x${canvas.height}`;
    this.root.dataset.drawn = vol.loaded[i] ? 'image' : 'placeholder';
    this.updateInfo();
    if (this.reformatDirty && this.onReformat) {
      this.reformatDirty = false;
      this.onReformat();
    }
    if (this.frameLog) this.frameLog.push([ts, i, performance.now()]);
  }

  drawSeg(x, y, w, h) {
    if (!this.seg) return;
    const list = this.seg.bySlice.get(this.slice);
    if (!list || !list.length) return;
    let px = this.segCache.get(this.slice);
    if (!px) {
      px = list.map((e) => ({
        color: this.seg.colors.get(e.segment) ?? 0xff00ffff,
        idx: outline(e.runs || [], this.vol.rows, this.vol.cols),
      }));
      this.segCache.set(this.slice, px);
    }
    const img = this.segImg32;
    img.fill(0);
    for (const { color, idx } of px) for (let k = 0; k < idx.length; k++) img[idx[k]] = color;
    this.segCtx.putImageData(this.segImg, 0, 0);
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.drawImage(this.segCanvas, x, y, w, h);
  }

  drawMarkers() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    const s = this.scale();
    this.findings.forEach((f, idx) => {
      const m = f.current || f.ai;
      if (!m) return;
      const [cx, cy, cz] = this.voxelOf(m);
      const r = Math.max(m.long_axis_mm || 6, 4) / 2;
      const dz = Math.abs(cz - this.slice) * this.vol.sliceSpacing;
      if (dz > r + 2) return;
      const [sx, sy] = this.toScreen(cx + 0.5, cy + 0.5);
      const rpx = (Math.sqrt(Math.max(r * r - dz * dz, 1)) + 3) * s;
      const selected = f.id === this.selectedId;
      ctx.strokeStyle = STATUS_COLOR[f.status] || '#ffb020';
      ctx.lineWidth = (selected ? 2.5 : 1.5) * dpr;
      ctx.setLineDash(f.status === 'rejected' ? [4 * dpr, 4 * dpr] : []);
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(rpx, 6 * dpr), 0, Math.PI * 2);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = `bold ${Math.round(13 * dpr)}px sans-serif`;
      ctx.fillStyle = ctx.strokeStyle;
      ctx.textAlign = 'left';
      ctx.fillText(String(idx + 1), sx + Math.max(rpx, 6 * dpr) * 0.75 + 3 * dpr, sy - Math.max(rpx, 6 * dpr) * 0.75);
      if (Math.round(cz) === this.slice) {
        for (const key of ['long_axis_line', 'short_axis_line']) {
          const l = m[key];
          if (!Array.isArray(l) || l.length !== 2) continue;
          const a = this.vol.toVoxel(l[0]);
          const b = this.vol.toVoxel(l[1]);
          const [ax, ay] = this.toScreen(a[0] + 0.5, a[1] + 0.5);
          const [bx, by] = this.toScreen(b[0] + 0.5, b[1] + 0.5);
          ctx.lineWidth = 1.2 * dpr;
          ctx.beginPath();
          ctx.moveTo(ax, ay);
          ctx.lineTo(bx, by);
          ctx.stroke();
        }
      }
    });
  }

  drawLines() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    const all = this.lines.filter((l) => l.slice === this.slice);
    if (this.pendingLine) all.push({ ...this.pendingLine, color: '#ffe066', mm: this.vol.inPlaneMm(this.pendingLine.a, this.pendingLine.b) });
    for (const l of all) {
      const [ax, ay] = this.toScreen(l.a[0], l.a[1]);
      const [bx, by] = this.toScreen(l.b[0], l.b[1]);
      ctx.strokeStyle = l.color || '#ffe066';
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = 1.5 * dpr;
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
      for (const [px, py] of [[ax, ay], [bx, by]]) {
        ctx.beginPath();
        ctx.arc(px, py, 2.5 * dpr, 0, Math.PI * 2);
        ctx.fill();
      }
      ctx.font = `${Math.round(12 * dpr)}px sans-serif`;
      ctx.textAlign = 'left';
      ctx.fillText(`${l.label ? `${l.label} ` : ''}${l.mm.toFixed(1)} mm`, bx + 6 * dpr, by);
    }
  }

  updateInfo() {
    const v = this.vol;
    const s = v.slices[this.slice];
    const z = s.ipp[2];
    this.info.tl.textContent = `${t('viewer.slice')} ${this.slice + 1}/${v.n}  ·  z ${z.toFixed(1)} mm`;
    this.info.tr.textContent = `${t('viewer.window')} ${this.wc}/${this.ww}  ·  ${t('viewer.zoom')} ${this.zoom.toFixed(1)}×`;
    let hu = '';
    if (this.cursor) {
      const c = Math.floor(this.cursor[0]);
      const r = Math.floor(this.cursor[1]);
      const h = v.hu(c, r, this.slice);
      if (h !== null) {
        const w = v.toWorld(c + 0.5, r + 0.5, this.slice);
        hu = `(${c}, ${r})  ${h} HU  ·  ${w.map((q) => q.toFixed(1)).join(', ')} mm`;
      }
    }
    this.info.bl.textContent = hu;
    this.root.dataset.hu = hu;
    this.info.br.textContent = v.loadedCount < v.n ? `${t('viewer.loading')} ${v.loadedCount}/${v.n}` : '';
  }

  loadedChanged() {
    const v = this.vol;
    this.root.dataset.loaded = String(v.loadedCount);
    if (v.loadedCount === v.n) {
      this.root.dataset.ready = 'true';
      this.reformatDirty = true;
      this.requestRender();
    } else if (v.loadedCount % 16 === 0) {
      this.reformatDirty = true;
    }
    if (!this.raf) this.updateInfo();
  }
}

/**
 * Draws a coronal (`plane` "coronal", through `row`) or sagittal ("sagittal", through
 * `col`) reformat of `vol` into `canvas`, with the superior end up, the right aspect from
 * pixel and slice spacing, and a crosshair at `mark` ([col,row,slice], optional).
 */
export function drawReformat(canvas, vol, plane, at, lut, mark, color) {
  const width = plane === 'coronal' ? vol.cols : vol.rows;
  const n = vol.n;
  const off = document.createElement('canvas');
  off.width = width;
  off.height = n;
  const octx = off.getContext('2d');
  const img = octx.createImageData(width, n);
  const out = new Uint32Array(img.data.buffer);
  const { rows, cols, data } = vol;
  const fixed = Math.min(Math.max(Math.round(at), 0), (plane === 'coronal' ? rows : cols) - 1);
  for (let s = 0; s < n; s++) {
    const y = n - 1 - s; // superior (highest position) at the top
    if (!vol.loaded[s]) {
      out.fill(0xff202020, y * width, (y + 1) * width);
      continue;
    }
    const base = s * rows * cols;
    if (plane === 'coronal') {
      const o = base + fixed * cols;
      for (let x = 0; x < width; x++) out[y * width + x] = lut[data[o + x] + 32768];
    } else {
      for (let x = 0; x < width; x++) out[y * width + x] = lut[data[base + x * cols + fixed] + 32768];
    }
  }
  octx.putImageData(img, 0, 0);
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const ch = Math.max(1, Math.round(canvas.clientHeight * dpr));
  canvas.width = cw;
  canvas.height = ch;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, cw, ch);
  const wmm = width * (plane === 'coronal' ? vol.colSpacing : vol.rowSpacing);
  const hmm = n * vol.sliceSpacing;
  const s = Math.min(cw / wmm, ch / hmm);
  const dw = wmm * s, dh = hmm * s;
  const ox = (cw - dw) / 2, oy = (ch - dh) / 2;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, ox, oy, dw, dh);
  if (mark) {
    const mx = ox + ((plane === 'coronal' ? mark[0] : mark[1]) + 0.5) / width * dw;
    const my = oy + (n - 1 - mark[2] + 0.5) / n * dh;
    ctx.strokeStyle = color || '#ffb020';
    ctx.lineWidth = 1.5 * dpr;
    const g = 14 * dpr;
    ctx.beginPath();
    ctx.moveTo(mx - 3 * g, my); ctx.lineTo(mx - g, my);
    ctx.moveTo(mx + g, my); ctx.lineTo(mx + 3 * g, my);
    ctx.moveTo(mx, my - 3 * g); ctx.lineTo(mx, my - g);
    ctx.moveTo(mx, my + g); ctx.lineTo(mx, my + 3 * g);
    ctx.stroke();
  }
  canvas.dataset.drawn = 'true';
}

export { STATUS_COLOR };
