// A CT series as a volume in Hounsfield units, loaded over DICOMweb: metadata first (slices
// sorted by position along the slice normal), then raw frames, centre slice first, a few
// requests at a time. Also the geometry: voxel <-> patient (world) coordinates.

import { seriesMetadata, rawFrame } from './api.js';

const TAG = {
  sop: '00080018', ipp: '00200032', iop: '00200037', rows: '00280010', cols: '00280011',
  spacing: '00280030', slope: '00281053', intercept: '00281052', pixrep: '00280103',
  bits: '00280100', thickness: '00180050', number: '00200013', wc: '00281050', ww: '00281051',
  frames: '00280008',
};

/** The first value of a DICOM JSON attribute, or `undefined`. */
export function val(ds, tag) {
  const a = ds && ds[tag];
  return a && Array.isArray(a.Value) ? a.Value[0] : undefined;
}

function nums(ds, tag) {
  const a = ds && ds[tag];
  return a && Array.isArray(a.Value) ? a.Value.map(Number) : undefined;
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

/** A volume of HU values (Int16Array, slice-major) with its geometry. */
export class Volume {
  /**
   * Reads the series metadata and prepares an empty volume (see `load`). `order`, when
   * given, is the series' SOP Instance UIDs in Lumen's slice order as the review API serves
   * it (`slice_order`, lumen_dicom::geometry): the slice indices of findings count in it.
   */
  static async open(study, series, order = []) {
    const meta = await seriesMetadata(study, series);
    const images = meta.filter((ds) => val(ds, TAG.rows) && val(ds, TAG.ipp) !== undefined
      && (Number(val(ds, TAG.frames)) || 1) === 1);
    if (images.length === 0) throw new Error('the series has no single-frame images');
    const first = images[0];
    const rows = Number(val(first, TAG.rows));
    const cols = Number(val(first, TAG.cols));
    const iop = nums(first, TAG.iop) || [1, 0, 0, 0, 1, 0];
    const rowDir = iop.slice(0, 3);
    const colDir = iop.slice(3, 6);
    // Lumen's slice normal (lumen_dicom::geometry::slice_normal): turned towards the head,
    // so that slice 0 is the one nearest the feet whichever way the orientation points.
    const raw = cross(rowDir, colDir);
    const normal = raw[2] < 0 ? raw.map((x) => -x) : raw;
    const sl = images
      .filter((ds) => Number(val(ds, TAG.rows)) === rows && Number(val(ds, TAG.cols)) === cols)
      .map((ds) => {
        const ipp = nums(ds, TAG.ipp);
        return {
          sop: String(val(ds, TAG.sop)),
          ipp,
          pos: dot(ipp, normal),
          slope: Number(val(ds, TAG.slope) ?? 1) || 1,
          intercept: Number(val(ds, TAG.intercept) ?? 0) || 0,
          signed: Number(val(ds, TAG.pixrep) ?? 0) === 1,
          bits: Number(val(ds, TAG.bits) ?? 16),
          number: Number(val(ds, TAG.number) ?? 0),
        };
      })
      .sort((a, b) => a.pos - b.pos || a.number - b.number);
    if (order.length) {
      // The served order is authoritative (same rule, one implementation).
      const rank = new Map(order.map((sop, i) => [sop, i]));
      sl.sort((a, b) => (rank.get(a.sop) ?? Infinity) - (rank.get(b.sop) ?? Infinity) || a.pos - b.pos);
    }
    const ps = nums(first, TAG.spacing) || [1, 1];
    const v = new Volume();
    v.study = study;
    v.series = series;
    v.rows = rows;
    v.cols = cols;
    v.rowDir = rowDir;
    v.colDir = colDir;
    v.normal = normal;
    v.rowSpacing = ps[0]; // between rows (vertical), mm
    v.colSpacing = ps[1]; // between columns (horizontal), mm
    v.slices = sl;
    v.n = sl.length;
    const gaps = [];
    for (let i = 1; i < sl.length; i++) gaps.push(sl[i].pos - sl[i - 1].pos);
    gaps.sort((a, b) => a - b);
    v.sliceSpacing = gaps.length ? (gaps[gaps.length >> 1] || 1) : Number(val(first, TAG.thickness) ?? 1) || 1;
    v.defaultWindow = [Number(val(first, TAG.wc) ?? -600), Number(val(first, TAG.ww) ?? 1500)];
    v.data = new Int16Array(v.n * rows * cols);
    v.loaded = new Uint8Array(v.n);
    v.loadedCount = 0;
    v.listeners = [];
    return v;
  }

  /** Index of the slice with this SOP Instance UID, or -1. */
  sliceOf(sop) {
    return this.slices.findIndex((s) => s.sop === sop);
  }

  /** Fetches every frame, `first` and its neighbours first, `parallel` requests at a time. */
  async load(first = this.n >> 1, parallel = 6) {
    const order = [];
    const seen = new Uint8Array(this.n);
    const c = Math.min(Math.max(first, 0), this.n - 1);
    for (let d = 0; order.length < this.n; d++) {
      for (const i of [c + d, c - d]) {
        if (i >= 0 && i < this.n && !seen[i]) {
          seen[i] = 1;
          order.push(i);
        }
      }
    }
    this.abort = new AbortController();
    let next = 0;
    const worker = async () => {
      while (next < order.length) {
        const i = order[next++];
        if (this.loaded[i]) continue;
        const buf = await rawFrame(this.study, this.series, this.slices[i].sop, this.abort.signal);
        this.put(i, buf);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  /** Stops loading. */
  close() {
    if (this.abort) this.abort.abort();
  }

  /** Stores slice `i` from raw little-endian pixels, applying the rescale to HU. */
  put(i, buf) {
    const s = this.slices[i];
    const n = this.rows * this.cols;
    let px;
    if (s.bits === 8) px = new Uint8Array(buf, 0, Math.min(n, buf.byteLength));
    else px = s.signed ? new Int16Array(buf, 0, Math.min(n, buf.byteLength >> 1))
      : new Uint16Array(buf, 0, Math.min(n, buf.byteLength >> 1));
    const out = this.data.subarray(i * n, (i + 1) * n);
    const { slope, intercept } = s;
    if (slope === 1 && Number.isInteger(intercept)) {
      for (let k = 0; k < px.length; k++) {
        const h = px[k] + intercept;
        out[k] = h < -32768 ? -32768 : h > 32767 ? 32767 : h;
      }
    } else {
      for (let k = 0; k < px.length; k++) {
        const h = Math.round(px[k] * slope + intercept);
        out[k] = h < -32768 ? -32768 : h > 32767 ? 32767 : h;
      }
    }
    if (!this.loaded[i]) {
      this.loaded[i] = 1;
      this.loadedCount++;
    }
    for (const f of this.listeners) f(i);
  }

  /** HU at voxel (col, row, slice), or null outside or not loaded. */
  hu(col, row, slice) {
    if (col < 0 || row < 0 || slice < 0 || col >= this.cols || row >= this.rows || slice >= this.n) return null;
    if (!this.loaded[slice]) return null;
    return this.data[(slice * this.rows + row) * this.cols + col];
  }

  /** Patient coordinates (mm) of a voxel position (fractional col/row, integer or fractional slice). */
  toWorld(col, row, slice) {
    const i = Math.min(Math.max(Math.round(slice), 0), this.n - 1);
    const o = this.slices[i].ipp;
    const dz = (slice - i) * this.sliceSpacing;
    const r = this.rowDir, c = this.colDir, nn = this.normal;
    return [0, 1, 2].map((k) => o[k] + col * this.colSpacing * r[k] + row * this.rowSpacing * c[k] + dz * nn[k]);
  }

  /** Voxel position [col, row, slice] (fractional) of patient coordinates. */
  toVoxel(p) {
    const o = this.slices[0].ipp;
    const d = [p[0] - o[0], p[1] - o[1], p[2] - o[2]];
    const pos = dot(p, this.normal);
    // Slice index by position along the normal (handles uneven spacing).
    let slice;
    const sl = this.slices;
    if (pos <= sl[0].pos) slice = (pos - sl[0].pos) / this.sliceSpacing;
    else if (pos >= sl[sl.length - 1].pos) slice = sl.length - 1 + (pos - sl[sl.length - 1].pos) / this.sliceSpacing;
    else {
      let lo = 0, hi = sl.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (sl[mid].pos <= pos) lo = mid; else hi = mid;
      }
      const span = sl[hi].pos - sl[lo].pos || 1;
      slice = lo + (pos - sl[lo].pos) / span;
    }
    return [dot(d, this.rowDir) / this.colSpacing, dot(d, this.colDir) / this.rowSpacing, slice];
  }

  /** Distance in mm between two voxel positions on one slice. */
  inPlaneMm(a, b) {
    const dx = (a[0] - b[0]) * this.colSpacing;
    const dy = (a[1] - b[1]) * this.rowSpacing;
    return Math.hypot(dx, dy);
  }
}
