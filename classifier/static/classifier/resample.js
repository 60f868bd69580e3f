/* Pillow's image resampling (libImaging/Resample.c and Reduce.c) for 8-bit RGB,
 * ported so the browser computes the very pixels the server does: the same
 * filters, the same fixed-point arithmetic, the same rounding. Also the model's
 * preprocessing built on it (datasets.imaging.fit_long_side and
 * training.ml.preprocess). An image is {width, height, data: RGB bytes}.
 *
 * Loaded as a plain script (window.snapclassResample) or with require() (tests).
 */
(function (root) {
  "use strict";


  const PRECISION_BITS = 32 - 8 - 2;
  const ONE = 2 ** PRECISION_BITS;
  const FILTERS = {
    bilinear: {
      support: 1.0,
      f(x) {
        x = Math.abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
      },
    },
    bicubic: {
      support: 2.0,
      f(x) {
        const a = -0.5;
        x = Math.abs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
      },
    },
  };

  // An image here is {width, height, data: Uint8ClampedArray of RGB}.
  function newImage(width, height) {
    return { width, height, data: new Uint8ClampedArray(width * height * 3) };
  }

  function precomputeCoeffs(inSize, in0, in1, outSize, filter) {
    in0 = Math.fround(in0);
    in1 = Math.fround(in1);
    const scale = Math.fround(in1 - in0) / outSize;
    const filterscale = scale < 1.0 ? 1.0 : scale;
    const support = filter.support * filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const kk = new Int32Array(outSize * ksize);
    const k = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      const ss = 1.0 / filterscale;
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      let ww = 0.0;
      for (let x = 0; x < xmax; x++) {
        const w = filter.f((x + xmin - center + 0.5) * ss);
        k[x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        const w = ww !== 0.0 ? k[x] / ww : k[x];
        kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { ksize, bounds, kk };
  }

  function clip8(v) {
    if (v >= ONE * 256) return 255;
    if (v <= 0) return 0;
    return Math.floor(v / ONE);
  }

  function resampleHorizontal(src, outWidth, rowFirst, rowCount, coeffs, colShift) {
    const out = newImage(outWidth, rowCount);
    const { ksize, bounds, kk } = coeffs;
    const s = src.data;
    const d = out.data;
    for (let yy = 0; yy < rowCount; yy++) {
      const row = (yy + rowFirst) * src.width;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        const kbase = xx * ksize;
        let s0 = ONE / 2;
        let s1 = ONE / 2;
        let s2 = ONE / 2;
        for (let x = 0; x < xmax; x++) {
          const w = kk[kbase + x];
          const p = (row + x + xmin - colShift) * 3;
          s0 += s[p] * w;
          s1 += s[p + 1] * w;
          s2 += s[p + 2] * w;
        }
        const o = (yy * outWidth + xx) * 3;
        d[o] = clip8(s0);
        d[o + 1] = clip8(s1);
        d[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  function resampleVertical(src, outHeight, coeffs, shift) {
    const out = newImage(src.width, outHeight);
    const { ksize, bounds, kk } = coeffs;
    const s = src.data;
    const d = out.data;
    const width = src.width;
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = bounds[yy * 2] - shift;
      const ymax = bounds[yy * 2 + 1];
      const kbase = yy * ksize;
      for (let xx = 0; xx < width; xx++) {
        let s0 = ONE / 2;
        let s1 = ONE / 2;
        let s2 = ONE / 2;
        for (let y = 0; y < ymax; y++) {
          const w = kk[kbase + y];
          const p = ((y + ymin) * width + xx) * 3;
          s0 += s[p] * w;
          s1 += s[p + 1] * w;
          s2 += s[p + 2] * w;
        }
        const o = (yy * width + xx) * 3;
        d[o] = clip8(s0);
        d[o + 1] = clip8(s1);
        d[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  // Which pass Pillow runs first. Pillow 13 chooses: horizontal first when the
  // height grows or stays, vertical first when only the height shrinks; when
  // both shrink its rule is not published, and the smaller intermediate image
  // is used here (measured to agree on most sizes; otherwise pixels differ by
  // at most one level). The page's own flow resizes one axis at a time.
  function horizontalFirst(inW, inH, outW, outH) {
    if (outH >= inH) return true;
    if (outW >= inW) return false;
    return outW * inH <= inW * outH;
  }

  // ImagingResample: two separable passes.
  function resampleBox(img, outWidth, outHeight, filter, box) {
    const [x0, y0, x1, y1] = box;
    const needH = outWidth !== img.width || x0 !== 0 || x1 !== outWidth;
    const needV = outHeight !== img.height || y0 !== 0 || y1 !== outHeight;
    if (!needH && !needV) return { ...img, data: img.data.slice() };
    const horiz = precomputeCoeffs(img.width, x0, x1, outWidth, filter);
    const vert = precomputeCoeffs(img.height, y0, y1, outHeight, filter);
    if (!needV) return resampleHorizontal(img, outWidth, 0, img.height, horiz, 0);
    if (!needH) return resampleVertical(img, outHeight, vert, 0);
    if (horizontalFirst(img.width, img.height, outWidth, outHeight)) {
      // Only the rows the vertical pass reads.
      const first = vert.bounds[0];
      const last = vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];
      const temp = resampleHorizontal(img, outWidth, first, last - first, horiz, 0);
      return resampleVertical(temp, outHeight, vert, first);
    }
    const first = horiz.bounds[0];
    const last = horiz.bounds[outWidth * 2 - 2] + horiz.bounds[outWidth * 2 - 1];
    const temp = resampleVertical(crop(img, first, 0, last, img.height), outHeight, vert, 0);
    return resampleHorizontal(temp, outWidth, 0, outHeight, horiz, first);
  }

  // Image.reduce: the mean of each factorX x factorY block, Pillow's rounding.
  function reduce(img, fx, fy) {
    const w = Math.ceil(img.width / fx);
    const h = Math.ceil(img.height / fy);
    const out = newImage(w, h);
    for (let y = 0; y < h; y++) {
      const yEnd = Math.min(img.height, (y + 1) * fy);
      for (let x = 0; x < w; x++) {
        const xEnd = Math.min(img.width, (x + 1) * fx);
        const n = (yEnd - y * fy) * (xEnd - x * fx);
        const multiplier = Math.floor(2 ** 24 / n);
        const amend = Math.floor(n / 2);
        let s0 = amend;
        let s1 = amend;
        let s2 = amend;
        for (let yy = y * fy; yy < yEnd; yy++) {
          for (let xx = x * fx; xx < xEnd; xx++) {
            const p = (yy * img.width + xx) * 3;
            s0 += img.data[p];
            s1 += img.data[p + 1];
            s2 += img.data[p + 2];
          }
        }
        const o = (y * w + x) * 3;
        out.data[o] = Math.floor((s0 * multiplier) / 2 ** 24);
        out.data[o + 1] = Math.floor((s1 * multiplier) / 2 ** 24);
        out.data[o + 2] = Math.floor((s2 * multiplier) / 2 ** 24);
      }
    }
    return out;
  }

  // Image.resize(size, filter, reducing_gap=gap) on a whole image.
  function resize(img, outWidth, outHeight, filterName, gap) {
    if (img.width === outWidth && img.height === outHeight) {
      return { ...img, data: img.data.slice() };
    }
    const filter = FILTERS[filterName];
    let box = [0, 0, img.width, img.height];
    if (gap) {
      const fx = Math.trunc(img.width / outWidth / gap) || 1;
      const fy = Math.trunc(img.height / outHeight / gap) || 1;
      if (fx > 1 || fy > 1) {
        // The safe box of a whole image is the whole image.
        box = [0, 0, img.width / fx, img.height / fy];
        img = reduce(img, fx, fy);
      }
    }
    return resampleBox(img, outWidth, outHeight, filter, box);
  }

  function crop(img, left, top, right, bottom) {
    const out = newImage(right - left, bottom - top);
    for (let y = top; y < bottom; y++) {
      const from = (y * img.width + left) * 3;
      out.data.set(img.data.subarray(from, from + out.width * 3), (y - top) * out.width * 3);
    }
    return out;
  }

  // Python's round(): halves go to the even neighbour.
  function pyRound(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // datasets.imaging.fit_long_side (what ingest and the server do).
  function fitLongSide(img, maxSide) {
    const { width: w, height: h } = img;
    if (Math.max(w, h) <= maxSide) return img;
    const size =
      w >= h
        ? [maxSide, Math.max(1, pyRound((h * maxSide) / w))]
        : [Math.max(1, pyRound((w * maxSide) / h)), maxSide];
    // Keep in step with fit_long_side's filter: an e2e test compares the tensors.
    return resize(img, size[0], size[1], "bilinear", 2.0);
  }

  // training.ml.preprocess.resize (fastai's validation Resize).
  function modelResize(img, size, method) {
    if (method === "crop") {
      const { width: w, height: h } = img;
      const m = w / size < h / size ? w / size : h / size;
      const side = Math.trunc(m * size);
      const left = Math.trunc(0.5 * (w - side));
      const top = Math.trunc(0.5 * (h - side));
      img = crop(img, left, top, Math.min(left + side, w), Math.min(top + side, h));
    } else if (method !== "squish") {
      throw new Error(`Unknown resize method ${method}`);
    }
    return resize(img, size, size, "bilinear", null);
  }

  // training.ml.preprocess.preprocess: NCHW float32, /255, then (x - mean) / std.
  function toTensorData(img, meta) {
    const n = img.width * img.height;
    const out = new Float32Array(3 * n);
    const f = Math.fround;
    for (let c = 0; c < 3; c++) {
      const mean = f(meta.mean[c]);
      const std = f(meta.std[c]);
      for (let i = 0; i < n; i++) {
        out[c * n + i] = f(f(f(img.data[i * 3 + c] / 255) - mean) / std);
      }
    }
    return out;
  }

  // What the server does to an upright RGB image: cap the long side like ingest,
  // then the model's validation transform.
  function preprocess(pixels, meta, maxSide) {
    const capped = fitLongSide(pixels, maxSide);
    const resized = modelResize(capped, meta.image_size, meta.resize_method);
    return toTensorData(resized, meta);
  }

  const api = {
    newImage,
    resize,
    reduce,
    crop,
    fitLongSide,
    modelResize,
    toTensorData,
    preprocess,
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.snapclassResample = api;
})(typeof self !== "undefined" ? self : globalThis);
