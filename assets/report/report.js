// harness report: the page's behaviour (src/html.rs inlines this file). Reads the JSON in
// #report-data and draws, with no library and no request: the runs table (sortable,
// filterable, the columns that vary first), charts (accuracy against parameters and against
// training seconds, parallel coordinates over the settings that vary, learning curves of the
// selected runs), a run's detail, and two runs side by side. Everything works on column names:
// a column the file lacks is left out, never an error.
'use strict';
(function () {
  const started = performance.now();
  const DATA = JSON.parse(document.getElementById('report-data').textContent);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const columns = DATA.columns;
  const columnAt = new Map(columns.map((c, i) => [c, i]));
  const epochAt = new Map(DATA.epoch_columns.map((c, i) => [c, i]));
  const has = (name) => columnAt.has(name);
  const numericColumn = (name) => DATA.numeric[columnAt.get(name)];

  // Columns that are results or bookkeeping rather than settings: left off the parallel
  // coordinates.
  const NOT_SETTINGS = new Set([
    'run_id', 'attempt', 'started_at', 'name', 'config', 'status', 'error', 'harness_version',
    'device', 'params', 'train_size', 'test_size', 'model_sha256', 'best_epoch', 'backend',
    'epochs_trained', 'stop_reason', 'git_commit',
  ]);
  const isResult = (name) =>
    NOT_SETTINGS.has(name) || /(_loss|_accuracy|_seconds|_per_second)$/.test(name);

  // ---- runs and what is derived from them ----
  // Values from the results files (run ids, activations, statuses) are looked up only as a
  // table's own keys: a run named `constructor` or `__proto__` must not find Object's.
  const own = (table, key) => (Object.hasOwn(table, key) ? table[key] : undefined);
  const runs = DATA.rows.map((cells, i) => ({ i, cells, epochs: DATA.epochs[i] || [] }));
  const get = (run, name) => (has(name) ? run.cells[columnAt.get(name)] : undefined);

  function colourOf(series) {
    const known = own(DATA.palette.known, series);
    if (known) return known;
    // FNV-1a over the UTF-8 bytes, as src/plot.rs's activation_colour.
    let hash = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(series)) {
      hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    }
    return DATA.palette.other[hash % DATA.palette.other.length];
  }

  function seriesOf(run) {
    const hidden = get(run, 'hidden');
    if (hidden === '') return 'none'; // format 1: no hidden layer, whatever the activation
    const activation = get(run, 'activation');
    if (activation === undefined || activation === null || activation === '') return 'unknown';
    return String(activation);
  }

  function shapeOf(run) {
    const shape = get(run, 'shape');
    if (typeof shape === 'string' && shape !== '') return shape;
    const hidden = get(run, 'hidden');
    if (hidden === '') return 'no hidden layer';
    return hidden === undefined || hidden === null ? '' : String(hidden);
  }

  for (const run of runs) {
    run.id = String(get(run, 'run_id'));
    const name = get(run, 'name');
    run.name = name === undefined || name === null || name === '' ? run.id : String(name);
    const val = get(run, 'val_accuracy');
    const size = get(run, 'validation_size');
    const validation =
      typeof val === 'number' && (size === undefined || (typeof size === 'number' && size > 0));
    const test = get(run, 'test_accuracy');
    run.accuracyKind = validation ? 'validation' : 'test';
    run.accuracy = validation ? val : typeof test === 'number' ? test : null;
    run.series = seriesOf(run);
    run.colour = colourOf(run.series);
    run.shape = shapeOf(run);
    run.pictures = own(DATA.pictures, run.id) || null;
  }
  const kinds = new Set(runs.filter((r) => r.accuracy !== null).map((r) => r.accuracyKind));
  const accuracyLabel =
    kinds.size === 1 && kinds.has('validation')
      ? 'validation accuracy'
      : kinds.has('validation')
        ? 'accuracy (validation where held, else test)'
        : 'test accuracy';
  const seriesLabel = (s) => (s === 'none' ? 'none (no hidden layer)' : s);

  const distinct = (name) => new Set(runs.map((r) => JSON.stringify(get(r, name)))).size;
  const varying = columns.filter((c) => distinct(c) > 1);
  const constant = columns.filter((c) => distinct(c) <= 1);
  const settings = varying.filter((c) => !isResult(c));
  const sortDefault = ['val_accuracy', 'test_accuracy'].find(
    (c) => has(c) && runs.some((r) => typeof get(r, c) === 'number')
  );
  // The table: name first, then the column the page ranks by and the test accuracy, then the
  // settings that vary, then the other columns that vary, then the constant ones (folded): what
  // a sweep is read for stays on screen at 1280 pixels.
  const leading = [
    ...(has('name') ? ['name'] : []),
    ...[sortDefault, 'test_accuracy'].filter((c, k, all) => c && has(c) && all.indexOf(c) === k),
  ];
  const tableColumns = [
    ...leading,
    ...settings.filter((c) => !leading.includes(c)),
    ...varying.filter((c) => !leading.includes(c) && !settings.includes(c)),
    ...constant.filter((c) => !leading.includes(c)),
  ];

  const state = {
    sort: sortDefault ? { column: sortDefault, direction: -1 } : null,
    filters: new Map(),
    search: '',
    selected: [],
    showConstant: false,
  };

  // ---- small helpers ----
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return 'NaN';
    if (typeof value !== 'number') return String(value);
    if (Number.isInteger(value)) {
      return Math.abs(value) >= 10000 ? value.toLocaleString('en-US') : String(value);
    }
    if (Math.abs(value) >= 1000) return value.toFixed(0);
    return String(Number(value.toPrecision(4)));
  }

  const collator = new Intl.Collator('en', { numeric: true });
  function compare(a, b) {
    const missingA = a === null || a === undefined;
    const missingB = b === null || b === undefined;
    if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return collator.compare(String(a), String(b));
  }

  // ---- filters: "text" contains; numbers "0.9..0.95", "..0.9", ">0.9", "<=100", "=5", "5" ----
  function parseFilter(text, numeric) {
    text = text.trim();
    if (text === '') return null;
    const number = (t) => (t.trim() === '' ? null : Number(t));
    if (numeric) {
      const parts = text.split('..');
      if (parts.length === 2) {
        const lo = number(parts[0]);
        const hi = number(parts[1]);
        if (!Number.isNaN(lo) && !Number.isNaN(hi)) {
          return (v) =>
            typeof v === 'number' && (lo === null || v >= lo) && (hi === null || v <= hi);
        }
      }
      const match = text.match(/^(<=|>=|<|>|=)\s*(.+)$/);
      if (match && !Number.isNaN(Number(match[2]))) {
        const bound = Number(match[2]);
        const test = {
          '<': (v) => v < bound,
          '<=': (v) => v <= bound,
          '>': (v) => v > bound,
          '>=': (v) => v >= bound,
          '=': (v) => v === bound,
        }[match[1]];
        return (v) => typeof v === 'number' && test(v);
      }
      if (!Number.isNaN(Number(text))) return (v) => v === Number(text);
    }
    const needle = text.toLowerCase();
    return (v) => fmt(v).toLowerCase().includes(needle) || String(v).toLowerCase().includes(needle);
  }

  function passes(run) {
    for (const [name, test] of state.filters) {
      if (!test(get(run, name))) return false;
    }
    if (state.search) {
      const needle = state.search.toLowerCase();
      if (!run.cells.some((v) => fmt(v).toLowerCase().includes(needle))) return false;
    }
    return true;
  }

  const visibleRuns = () => runs.filter((r) => r.visible);

  // ---- page skeleton ----
  const statusCounts = new Map();
  for (const run of runs) {
    const status = get(run, 'status') ?? 'unknown';
    statusCounts.set(status, (statusCounts.get(status) || 0) + 1);
  }
  const withPictures = runs.filter((r) => r.pictures);
  const summary = [
    `${runs.length} runs from ${DATA.source}`,
    [...statusCounts]
      .map(([s, n]) => `${n} ${s}`)
      .join(', '),
  ].join(': ');
  const notes = [];
  if (DATA.folded > 0) {
    notes.push(
      `${DATA.folded} earlier attempt${DATA.folded === 1 ? '' : 's'} folded away: each run_id ` +
        'shows its latest attempt that did not fail (or its latest, if all failed).'
    );
  }
  notes.push(`Accuracy in the charts is ${accuracyLabel}.`);
  notes.push(
    withPictures.length > 0
      ? `Weight pictures for ${withPictures.length} run${withPictures.length === 1 ? '' : 's'} ` +
          `(the best by accuracy with a saved model, at most ${DATA.max_pictures}): ` +
          withPictures.map((r) => r.name).join(', ') + '.'
      : 'No weight pictures: no run has a saved model beside this runs file ' +
          '(harness report --html --models DIR names another folder).'
  );

  const tip = el('div', { id: 'tip', role: 'tooltip', hidden: true });
  const countLine = el('span', { id: 'count' });
  const search = el('input', {
    id: 'search',
    type: 'search',
    placeholder: 'filter every column',
    'aria-label': 'filter every column',
    oninput: () => {
      state.search = search.value.trim();
      applyFilters();
    },
  });
  const foldButton = el('button', {
    id: 'toggle-constant',
    type: 'button',
    onclick: () => {
      state.showConstant = !state.showConstant;
      table.classList.toggle('show-constant', state.showConstant);
      layColumns();
      foldButton.textContent = foldLabel();
    },
  });
  const foldLabel = () =>
    `${state.showConstant ? 'hide' : 'show'} ${constant.length} column${constant.length === 1 ? '' : 's'} ` +
    'with one value';
  foldButton.textContent = foldLabel();
  if (constant.length === 0) foldButton.hidden = true;
  const compareButton = el('button', {
    id: 'compare-button',
    type: 'button',
    disabled: true,
    onclick: () => showCompare(),
  });
  const clearButton = el('button', {
    id: 'clear-selection',
    type: 'button',
    text: 'clear selection',
    onclick: () => {
      state.selected = [];
      selectionChanged();
    },
  });

  const charts = {
    params: figure('chart-params', `${accuracyLabel} against parameters`),
    seconds: figure('chart-seconds', `${accuracyLabel} against training time`),
    parallel: figure('chart-parallel', `settings that vary, coloured by ${accuracyLabel}`, 'wide'),
    curves: figure('chart-curves', 'learning curves of the selected runs', 'wide'),
  };

  // Which settings mattered (computed by harness: src/search/importance.rs), as bars.
  function importancePanel() {
    const panel = DATA.importance;
    if (!panel) return null;
    const rows = panel.settings.map(([setting, share, domain]) =>
      el(
        'div',
        { class: 'importance-row', 'data-setting': setting },
        el('span', { class: 'importance-name', text: setting }),
        el('span', { class: 'importance-bar' }, el('span', { style: `width: ${(share * 100).toFixed(1)}%` })),
        el('span', { class: 'importance-value', text: share.toFixed(3) }),
        el('span', { class: 'importance-domain', text: domain })
      )
    );
    return el(
      'section',
      { id: 'importance' },
      el('h2', { text: `Which settings mattered for ${panel.metric}` }),
      el('p', { class: 'hint', text: `Over ${panel.runs} ok runs, by ${panel.method}; the shares sum to 1.` }),
      ...rows
    );
  }

  function figure(id, caption, wide) {
    const box = el('figure', { id, class: wide ? 'chart wide' : 'chart' });
    const title = el('figcaption', { text: caption });
    const drawing = interactive(svg('svg', { role: 'img', 'aria-label': caption }));
    const legend = el('div', { class: 'legend' });
    box.append(title, drawing, legend);
    return { box, drawing, legend };
  }

  const table = el('table', { id: 'runs' });
  const thead = el('thead');
  const tbody = el('tbody');
  table.append(thead, tbody);
  const drawer = el('aside', { id: 'drawer', hidden: true, 'aria-live': 'polite' });

  document.body.append(
    el(
      'header',
      {},
      el('h1', { text: 'harness report' }),
      el('p', { id: 'summary', text: summary }),
      ...notes.map((n) => el('p', { class: 'note', text: n }))
    ),
    el('section', { id: 'charts' }, ...Object.values(charts).map((c) => c.box)),
    importancePanel(),
    el(
      'section',
      { id: 'table-section' },
      el('div', { class: 'toolbar' }, search, countLine, compareButton, clearButton, foldButton),
      el('p', {
        class: 'hint',
        text:
          'Click a header to sort, type under it to filter (text, or numbers as 0.9..0.95, ' +
          '>0.9, <=100), tick runs to draw their curves and compare two, click a row for its ' +
          'detail.',
      }),
      el('div', { class: 'table-wrap' }, table)
    ),
    drawer,
    tip
  );

  // ---- the table ----
  const headerRow = el('tr');
  const filterRow = el('tr', { class: 'filters' });
  headerRow.append(el('th', { class: 'select', scope: 'col' }, el('span', { class: 'sr', text: 'select' })));
  filterRow.append(el('th', { class: 'select' }));
  for (const name of tableColumns) {
    const folded = constant.includes(name) ? 'constant' : null;
    const numeric = numericColumn(name);
    const th = el(
      'th',
      { 'data-col': name, scope: 'col', class: [folded, numeric ? 'num' : null].filter(Boolean).join(' ') || null },
      el('button', {
        type: 'button',
        class: 'sort',
        text: name,
        title: `sort by ${name}`,
        onclick: () => {
          const same = state.sort && state.sort.column === name;
          state.sort = { column: name, direction: same ? -state.sort.direction : 1 };
          sortRows();
        },
      })
    );
    headerRow.append(th);
    const input = el('input', {
      type: 'text',
      'data-filter': name,
      placeholder: numeric ? 'min..max' : 'contains',
      'aria-label': `filter ${name}`,
      oninput: () => {
        const test = parseFilter(input.value, numeric);
        if (test) state.filters.set(name, test);
        else state.filters.delete(name);
        applyFilters();
      },
    });
    filterRow.append(el('th', { class: folded }, input));
  }
  thead.append(headerRow, filterRow);

  // Fixed column widths, from each column's longest text: the browser then lays out 1,000 rows
  // without measuring every cell again after each sort.
  const widthOf = new Map(
    tableColumns.map((name) => {
      let longest = name.length + 2;
      for (const run of runs) longest = Math.max(longest, fmt(get(run, name)).length);
      const extra = name === 'name' || (!has('name') && name === 'run_id') ? 90 : 0;
      return [name, Math.min(320, Math.max(64, longest * 8.2 + 34 + extra))];
    })
  );
  function layColumns() {
    const shown = tableColumns.filter((c) => state.showConstant || !constant.includes(c));
    const widths = [40, ...shown.map((c) => widthOf.get(c))];
    const colgroup = el('colgroup', {}, ...widths.map((w) => el('col', { style: `width:${Math.round(w)}px` })));
    const old = table.querySelector('colgroup');
    if (old) old.replaceWith(colgroup);
    else table.prepend(colgroup);
    table.style.width = `${Math.round(widths.reduce((a, b) => a + b, 0))}px`;
  }
  layColumns();

  // Rows are made when first shown, many at a time from one HTML string, and at most
  // state.limit of them are in the table at once: a 1,000-run page sorts and filters without
  // laying out a thousand rows. One listener on the body serves every row.
  const escape = (text) =>
    String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const nameColumn = has('name') ? 'name' : 'run_id';
  function rowMarkup(run) {
    const cells = tableColumns.map((name) => {
      const value = get(run, name);
      const classes = [
        constant.includes(name) ? 'constant' : null,
        typeof value === 'number' ? 'num' : null,
        value === null ? 'missing' : null,
      ].filter(Boolean);
      const title = escape(value === null ? 'NaN' : value);
      let content = escape(fmt(value));
      if (name === nameColumn) {
        content =
          `<span class="swatch" style="background:${run.colour}"></span>${content}` +
          (run.pictures ? '<span class="badge" title="weight pictures in this page">pictures</span>' : '');
      }
      return `<td${classes.length ? ` class="${classes.join(' ')}"` : ''} title="${title}">${content}</td>`;
    });
    return (
      `<tr data-run="${run.i}" tabindex="0"><td class="select"><input type="checkbox" class="pick" ` +
      `aria-label="select ${escape(run.name)}"></td>${cells.join('')}</tr>`
    );
  }
  function makeRows(list) {
    const missing = list.filter((run) => !run.tr);
    if (missing.length === 0) return;
    const scratch = document.createElement('tbody');
    scratch.innerHTML = missing.map(rowMarkup).join('');
    const chosen = new Set(state.selected);
    for (const tr of [...scratch.rows]) {
      const run = runs[Number(tr.dataset.run)];
      run.tr = tr;
      run.checkbox = tr.cells[0].firstChild;
      run.checkbox.checked = chosen.has(run.i);
    }
  }
  for (const run of runs) run.visible = true;
  state.limit = 200;
  const moreButton = el('button', {
    id: 'more-rows',
    type: 'button',
    onclick: () => {
      state.limit = Infinity;
      renderRows();
    },
  });
  table.after(moreButton);

  tbody.addEventListener('change', (event) => {
    if (!event.target.classList.contains('pick')) return;
    const run = runs[Number(event.target.closest('tr').dataset.run)];
    state.selected = event.target.checked
      ? [...state.selected, run.i]
      : state.selected.filter((i) => i !== run.i);
    selectionChanged();
  });
  tbody.addEventListener('click', (event) => {
    if (event.target.classList.contains('pick')) return;
    const tr = event.target.closest('tr[data-run]');
    if (tr) showDetail(runs[Number(tr.dataset.run)]);
  });
  tbody.addEventListener('keydown', (event) => {
    const tr = event.target.closest('tr[data-run]');
    if (event.key === 'Enter' && tr) showDetail(runs[Number(tr.dataset.run)]);
  });

  let order = runs.slice();
  function sortRows() {
    order = runs.slice();
    if (state.sort) {
      const { column, direction } = state.sort;
      const at = columnAt.get(column);
      order.sort((a, b) => {
        const va = a.cells[at];
        const vb = b.cells[at];
        const missing = (va === null || va === undefined) - (vb === null || vb === undefined);
        if (missing !== 0) return missing; // missing values last in either direction
        return direction * compare(va, vb) || a.i - b.i;
      });
    }
    for (const th of headerRow.querySelectorAll('th[data-col]')) {
      const sorted = state.sort && th.dataset.col === state.sort.column;
      if (sorted) th.setAttribute('aria-sort', state.sort.direction > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    renderRows();
  }

  function renderRows() {
    const matching = order.filter((run) => run.visible);
    const shown = matching.slice(0, state.limit);
    makeRows(shown);
    tbody.replaceChildren(...shown.map((run) => run.tr));
    countLine.textContent =
      `${matching.length} of ${runs.length} runs match` +
      (shown.length < matching.length ? `; the first ${shown.length} are listed` : '');
    moreButton.hidden = shown.length >= matching.length;
    moreButton.textContent = `list all ${matching.length} matching runs`;
  }

  let redraw = null;
  function applyFilters() {
    for (const run of runs) run.visible = passes(run);
    renderRows();
    clearTimeout(redraw);
    redraw = setTimeout(drawCharts, 120);
  }

  function selectionChanged() {
    const chosen = new Set(state.selected);
    for (const run of runs) if (run.checkbox) run.checkbox.checked = chosen.has(run.i);
    for (const node of document.querySelectorAll('#charts [data-run]')) {
      node.classList.toggle('selected', chosen.has(Number(node.dataset.run)));
    }
    compareButton.disabled = state.selected.length < 2;
    compareButton.textContent =
      state.selected.length >= 2
        ? `compare ${runs[state.selected[0]].name} and ${runs[state.selected[1]].name}`
        : 'compare (tick two runs)';
    clearButton.disabled = state.selected.length === 0;
    drawCurves(charts.curves, state.selected.map((i) => runs[i]));
  }

  // ---- tooltips ----
  function describe(run) {
    const lines = [`${run.name} (${run.id})`];
    lines.push(`${accuracyLabel}: ${fmt(run.accuracy)}`);
    if (run.shape) lines.push(`shape ${run.shape}, ${seriesLabel(run.series)}`);
    for (const name of settings) {
      if (['hidden', 'shape', 'activation', 'name'].includes(name)) continue;
      lines.push(`${name} = ${fmt(get(run, name))}`);
    }
    if (has('params')) lines.push(`params = ${fmt(get(run, 'params'))}`);
    if (has('train_seconds')) lines.push(`train_seconds = ${fmt(get(run, 'train_seconds'))}`);
    return lines;
  }

  function showTip(event, run) {
    tip.replaceChildren(...describe(run).map((line, k) => el(k === 0 ? 'strong' : 'div', { text: line })));
    tip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  }

  // Charts listen once for all their marks (a 1,000-run page has thousands): hovering a mark
  // with data-run names its run, clicking it opens the run's detail.
  function interactive(drawing) {
    const runOf = (event) => {
      const mark = event.target.closest && event.target.closest('[data-run]');
      return mark ? runs[Number(mark.dataset.run)] : null;
    };
    drawing.addEventListener('pointermove', (event) => {
      const run = runOf(event);
      if (run) showTip(event, run);
      else tip.hidden = true;
    });
    drawing.addEventListener('pointerleave', () => {
      tip.hidden = true;
    });
    drawing.addEventListener('click', (event) => {
      const run = runOf(event);
      if (run) showDetail(run);
    });
    return drawing;
  }

  // ---- scales and axes ----
  function extent(values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    return lo <= hi ? [lo, hi] : null;
  }

  // A log axis where every value is positive and they span a decade or more (src/plot.rs's
  // log_axis), or where `force` asks for one and the values are positive.
  const wantsLog = (range, force) => range[0] > 0 && (force || range[1] >= 10 * range[0]);

  function scale(range, pixels, log) {
    let [lo, hi] = range;
    if (log) {
      const [a, b] = [Math.log10(lo), Math.log10(hi)];
      const span = b - a || 1;
      return (v) => pixels[0] + ((Math.log10(v) - a) / span) * (pixels[1] - pixels[0]);
    }
    const span = hi - lo || 1;
    return (v) => pixels[0] + ((v - lo) / span) * (pixels[1] - pixels[0]);
  }

  function pad(range, log) {
    let [lo, hi] = range;
    if (log) return [lo / 1.4, hi * 1.4];
    const margin = (hi - lo) * 0.06 || Math.abs(hi) * 0.05 || 0.01;
    return [lo - margin, hi + margin];
  }

  function ticks(range, log) {
    const [lo, hi] = range;
    if (log) {
      const first = Math.floor(Math.log10(lo));
      const last = Math.ceil(Math.log10(hi));
      const steps = last - first <= 2 ? [1, 2, 5] : [1];
      const out = [];
      for (let e = first; e <= last; e++) {
        for (const m of steps) {
          const v = m * Math.pow(10, e);
          if (v >= lo && v <= hi) out.push(Number(v.toPrecision(6)));
        }
      }
      return out;
    }
    const raw = (hi - lo) / 5;
    if (!(raw > 0)) return [lo];
    const base = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = base * (raw / base >= 5 ? 5 : raw / base >= 2 ? 2 : 1);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Number(v.toPrecision(10)));
    }
    return out;
  }

  const BOX = { width: 480, height: 300, left: 58, right: 14, top: 12, bottom: 46 };

  function axes(drawing, x, y, xLabel, yLabel, BOX) {
    const g = svg('g', { class: 'axes' });
    const [x0, x1] = [BOX.left, BOX.width - BOX.right];
    const [y0, y1] = [BOX.height - BOX.bottom, BOX.top];
    g.append(svg('rect', { x: x0, y: y1, width: x1 - x0, height: y0 - y1, class: 'frame' }));
    for (const t of x.ticks) {
      const px = x.at(t);
      g.append(svg('line', { x1: px, x2: px, y1: y1, y2: y0, class: 'grid' }));
      g.append(svg('text', { x: px, y: y0 + 15, 'text-anchor': 'middle' }, fmt(t)));
    }
    for (const t of y.ticks) {
      const py = y.at(t);
      g.append(svg('line', { x1: x0, x2: x1, y1: py, y2: py, class: 'grid' }));
      g.append(svg('text', { x: x0 - 5, y: py + 4, 'text-anchor': 'end' }, fmt(t)));
    }
    g.append(svg('text', { x: (x0 + x1) / 2, y: BOX.height - 8, 'text-anchor': 'middle', class: 'label' }, xLabel));
    g.append(
      svg('text', { x: 13, y: (y0 + y1) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 13 ${(y0 + y1) / 2})` }, yLabel)
    );
    drawing.append(g);
  }

  function frame(drawing, width, height) {
    drawing.replaceChildren();
    drawing.style.display = '';
    drawing.setAttribute('viewBox', `0 0 ${width} ${height}`);
    drawing.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  }

  // A chart with nothing to draw says why, in its legend's place.
  function message(chart, text) {
    chart.drawing.replaceChildren();
    chart.drawing.style.display = 'none';
    chart.legend.replaceChildren(el('p', { class: 'note empty', text }));
  }

  // ---- accuracy against a column (log axis) ----
  function drawScatter(chart, column, quantity) {
    const shown = visibleRuns().filter(
      (r) => r.accuracy !== null && typeof get(r, column) === 'number' && get(r, column) > 0
    );
    chart.legend.replaceChildren();
    if (!has(column)) return message(chart, `this runs file has no ${column} column`);
    if (shown.length === 0) return message(chart, 'no run to show');
    const xRange = extent(shown.map((r) => get(r, column)));
    const log = wantsLog(xRange, true);
    const xDomain = pad(xRange, log);
    const yDomain = pad(extent(shown.map((r) => r.accuracy)), false);
    const x = { at: scale(xDomain, [BOX.left, BOX.width - BOX.right], log), ticks: ticks(xDomain, log) };
    const y = { at: scale(yDomain, [BOX.height - BOX.bottom, BOX.top], false), ticks: ticks(yDomain, false) };
    frame(chart.drawing, BOX.width, BOX.height);
    axes(chart.drawing, x, y, `${quantity}${log ? ' (log scale)' : ''}`, accuracyLabel, BOX);
    const chosen = new Set(state.selected);
    // Smaller, fainter marks as runs pile up, so that dense columns still show their spread.
    const radius = shown.length > 400 ? 2.6 : shown.length > 100 ? 3.4 : 4.5;
    const points = svg('g', { class: 'points', 'fill-opacity': shown.length > 100 ? 0.55 : null });
    for (const run of shown) {
      const dot = svg('circle', {
        cx: x.at(get(run, column)).toFixed(1),
        cy: y.at(run.accuracy).toFixed(1),
        r: radius,
        fill: run.colour,
        'data-run': run.i,
        'data-series': run.series,
        class: chosen.has(run.i) ? 'point selected' : 'point',
      });
      points.append(dot);
    }
    chart.drawing.append(points);
    seriesLegend(chart.legend, shown);
  }

  function seriesLegend(legend, shown) {
    const counts = new Map();
    for (const run of shown) counts.set(run.series, (counts.get(run.series) || 0) + 1);
    legend.replaceChildren(
      ...[...counts.keys()].sort().map((s) =>
        el('span', { class: 'key' }, el('span', { class: 'swatch', style: `background:${colourOf(s)}` }), `${seriesLabel(s)} (${counts.get(s)})`)
      )
    );
  }

  // ---- parallel coordinates over the settings that vary ----
  const ACCURACY_STOPS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#c8b400'];
  function accuracyColour(t) {
    t = Math.max(0, Math.min(1, t));
    const k = Math.min(ACCURACY_STOPS.length - 2, Math.floor(t * (ACCURACY_STOPS.length - 1)));
    const f = t * (ACCURACY_STOPS.length - 1) - k;
    const rgb = (h) => [1, 3, 5].map((o) => parseInt(h.slice(o, o + 2), 16));
    const [a, b] = [rgb(ACCURACY_STOPS[k]), rgb(ACCURACY_STOPS[k + 1])];
    return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * f)).join(',')})`;
  }

  function parallelAxis(name, values, top, bottom) {
    const numbers = values.every((v) => v === null || typeof v === 'number');
    const unique = [...new Set(values.map((v) => (v === null ? null : v)))];
    if (!numbers || unique.length <= 10) {
      unique.sort(compare);
      const step = unique.length > 1 ? (bottom - top) / (unique.length - 1) : 0;
      const place = new Map(unique.map((v, k) => [JSON.stringify(v), unique.length > 1 ? bottom - k * step : (top + bottom) / 2]));
      const label = (v) => (v === '' ? '(empty)' : fmt(v));
      return { name, at: (v) => place.get(JSON.stringify(v)), ticks: unique, label };
    }
    const range = extent(values);
    const log = wantsLog(range, false);
    const at = scale(range, [bottom, top], log);
    return {
      name: log ? `${name} (log)` : name,
      at: (v) => (v === null ? bottom + 14 : at(v)),
      ticks: ticks(range, log),
      label: fmt,
    };
  }

  function drawParallel(chart) {
    const shown = visibleRuns().filter((r) => r.accuracy !== null);
    chart.legend.replaceChildren();
    const names = settings.slice(0, 10);
    if (names.length === 0) return message(chart, 'no setting varies across these runs');
    if (shown.length === 0) return message(chart, 'no run to show');
    // One unit a pixel at the figure's width, so that text keeps its size on any screen.
    const width = Math.max(110 * (names.length + 1), chart.box.clientWidth - 24 || 480, 360);
    const height = 314;
    // Axis titles take two rows, alternately, so that neighbours never overlap.
    const [top, bottom] = [48, height - 20];
    frame(chart.drawing, width, height);
    const axisList = names.map((name) => parallelAxis(name, shown.map((r) => get(r, name)), top, bottom));
    const accRange = extent(shown.map((r) => r.accuracy));
    const accAxis = { name: accuracyLabel, at: scale(pad(accRange, false), [bottom, top], false), ticks: ticks(pad(accRange, false), false), label: fmt };
    const all = [...axisList, accAxis];
    const step = (width - 90) / (all.length - 1);
    const xs = all.map((_, k) => 45 + k * step);
    const lines = svg('g', {
      class: 'lines',
      'stroke-opacity': shown.length > 50 ? Math.max(0.12, Math.min(0.55, 6 / Math.sqrt(shown.length))).toFixed(2) : null,
    });
    const chosen = new Set(state.selected);
    const span = accRange[1] - accRange[0] || 1;
    const ordered = shown.slice().sort((a, b) => a.accuracy - b.accuracy); // best drawn last, on top
    for (const run of ordered) {
      const points = all.map((axis, k) => {
        const value = k < axisList.length ? get(run, names[k]) : run.accuracy;
        return `${xs[k].toFixed(1)},${axis.at(value).toFixed(1)}`;
      });
      const line = svg('polyline', {
        points: points.join(' '),
        stroke: accuracyColour((run.accuracy - accRange[0]) / span),
        'data-run': run.i,
        class: chosen.has(run.i) ? 'line selected' : 'line',
      });
      lines.append(line);
    }
    chart.drawing.append(lines);
    const g = svg('g', { class: 'axes' });
    chart.drawing.append(g); // in the page, so that text can be measured
    // A title may be as wide as two axes apart (its neighbours are on the other row), less a
    // gap; the first and last are anchored at the figure's edges so they are never cut.
    const room = Math.max(40, 2 * step - 12);
    const last = all.length - 1;
    all.forEach((axis, k) => {
      g.append(svg('line', { x1: xs[k], x2: xs[k], y1: top, y2: bottom, class: 'axis' }));
      const anchor = k === 0 ? 'start' : k === last ? 'end' : 'middle';
      const x = k === 0 ? 4 : k === last ? width - 4 : xs[k];
      const title = svg('text', { x, y: k % 2 === 0 ? 14 : 30, 'text-anchor': anchor, class: 'label' }, axis.name);
      g.append(title);
      // Shortened, with an ellipsis, until it fits its room (the whole name on hover).
      const fits = k === 0 || k === last ? room / 2 + (xs[0] - 4) : room;
      if (title.getComputedTextLength() > fits) {
        let text = axis.name;
        while (text.length > 1 && title.getComputedTextLength() > fits) {
          text = text.slice(0, -1);
          title.textContent = text + '…';
        }
      }
      title.append(svg('title', {}, axis.name));
      const tickValues = axis.ticks.length > 12 ? axis.ticks.filter((_, i) => i % Math.ceil(axis.ticks.length / 12) === 0) : axis.ticks;
      for (const t of tickValues) {
        const py = axis.at(t);
        g.append(svg('text', { x: xs[k] + 4, y: py + 4, class: 'tick' }, String(axis.label(t)).slice(0, 16)));
      }
    });
    const gradient = ACCURACY_STOPS.map((c, k) => `${c} ${(100 * k) / (ACCURACY_STOPS.length - 1)}%`).join(', ');
    chart.legend.append(
      el('span', { class: 'key' }, `${accuracyLabel} ${fmt(accRange[0])}`),
      el('span', { class: 'ramp', style: `background:linear-gradient(to right, ${gradient})` }),
      el('span', { class: 'key' }, fmt(accRange[1]))
    );
    if (settings.length > names.length) {
      chart.legend.append(el('span', { class: 'key' }, `(first ${names.length} of ${settings.length} settings)`));
    }
  }

  // ---- learning curves ----
  const DASHES = [null, '6 3', '2 3', '8 3 2 3'];
  function curveOf(run) {
    const column =
      run.accuracyKind === 'validation' && epochAt.has('val_accuracy') ? 'val_accuracy' : 'test_accuracy';
    if (!epochAt.has(column)) return [];
    const e = epochAt.get('epoch');
    return run.epochs
      .map((row, k) => [e === undefined ? k + 1 : row[e], row[epochAt.get(column)]])
      .filter(([x, y]) => typeof x === 'number' && typeof y === 'number');
  }

  function drawCurves(chart, chosen, attribute) {
    chart.legend.replaceChildren();
    if (chosen.length === 0) {
      return message(chart, 'Tick runs in the table to draw their learning curves here.');
    }
    const curves = chosen.map((run) => ({ run, points: curveOf(run) })).filter((c) => c.points.length > 0);
    if (curves.length === 0) return message(chart, 'The selected runs have no epochs in the epochs file.');
    const xRange = extent(curves.flatMap((c) => c.points.map((p) => p[0])));
    const yRange = pad(extent(curves.flatMap((c) => c.points.map((p) => p[1]))), false);
    const xDomain = [Math.min(xRange[0], 1) - 0.3, xRange[1] + 0.3];
    // As wide as its box, one unit a pixel: a wide box gets a wide chart, not a taller one.
    const room = chart.drawing.parentElement ? chart.drawing.parentElement.clientWidth - 24 : 0;
    const box = { ...BOX, width: Math.max(BOX.width, Math.min(1400, room || 0)) };
    const x = { at: scale(xDomain, [box.left, box.width - box.right], false), ticks: ticks(xRange, false).filter(Number.isInteger) };
    const y = { at: scale(yRange, [box.height - box.bottom, box.top], false), ticks: ticks(yRange, false) };
    frame(chart.drawing, box.width, box.height);
    axes(chart.drawing, x, y, 'epoch', `${accuracyLabel} after each epoch`, box);
    const perSeries = new Map();
    const g = svg('g', { class: 'curves' });
    for (const { run, points } of curves) {
      const k = perSeries.get(run.series) || 0;
      perSeries.set(run.series, k + 1);
      const dash = DASHES[k % DASHES.length];
      const d = points.map(([px, py], i) => `${i ? 'L' : 'M'}${x.at(px).toFixed(1)},${y.at(py).toFixed(1)}`).join('');
      const path = svg('path', { d, stroke: run.colour, 'stroke-dasharray': dash, class: 'curve', 'data-run': run.i, [attribute || 'data-curve']: run.id });
      g.append(path);
      for (const [px, py] of points) {
        g.append(svg('circle', { cx: x.at(px).toFixed(1), cy: y.at(py).toFixed(1), r: 2.5, fill: run.colour }));
      }
      chart.legend.append(
        el('span', { class: 'key' }, (() => {
          const sample = svg('svg', { width: 26, height: 10, class: 'sample' });
          sample.append(svg('line', { x1: 1, x2: 25, y1: 5, y2: 5, stroke: run.colour, 'stroke-width': 2.5, 'stroke-dasharray': dash }));
          return sample;
        })(), `${run.name} (${seriesLabel(run.series)})`)
      );
    }
    chart.drawing.append(g);
  }

  function drawCharts() {
    drawScatter(charts.params, 'params', 'parameters (weights and biases)');
    drawScatter(charts.seconds, 'train_seconds', 'training time (seconds)');
    drawParallel(charts.parallel);
    drawCurves(charts.curves, state.selected.map((i) => runs[i]));
  }

  // ---- the drawer: a run's detail, or two runs side by side ----
  function openDrawer(title, ...content) {
    const close = el('button', {
      type: 'button',
      class: 'close',
      text: 'close',
      onclick: () => {
        drawer.hidden = true;
      },
    });
    drawer.replaceChildren(el('div', { class: 'drawer-head' }, el('h2', { text: title }), close), ...content);
    drawer.hidden = false;
    drawer.scrollTop = 0;
  }

  function keyValues(pairs) {
    const body = el('tbody');
    for (const [key, value, emphasis] of pairs) {
      body.append(el('tr', { class: emphasis ? 'varies' : null }, el('th', { scope: 'row', text: key }), el('td', { text: fmt(value) })));
    }
    return el('table', { class: 'kv' }, body);
  }

  function epochTable(run) {
    if (run.epochs.length === 0) return el('p', { class: 'note', text: 'No epochs for this run in the epochs file.' });
    const head = el('tr', {}, ...DATA.epoch_columns.map((c) => el('th', { scope: 'col', text: c })));
    const body = el('tbody', {}, ...run.epochs.map((row) => el('tr', {}, ...row.map((v) => el('td', { class: 'num', text: fmt(v) })))));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'epochs' }, el('thead', {}, head), body));
  }

  function pictureBlock(run) {
    if (run.pictures) {
      const shot = (src, caption) => el('figure', { class: 'picture' }, el('img', { src, alt: caption }), el('figcaption', { text: caption }));
      return el(
        'div',
        { class: 'pictures' },
        shot(run.pictures.tiles, 'first layer: each neuron\'s 784 weights as a 28x28 tile, green positive, red negative'),
        shot(run.pictures.confusion, 'confusion matrix on the test set'),
        shot(run.pictures.wrong, 'the most confidently wrong test digits')
      );
    }
    const sha = get(run, 'model_sha256');
    const why =
      sha === 'none'
        ? 'No pictures: this run saved no model.'
        : `No pictures in this page (they are embedded for the ${DATA.max_pictures} best runs with a saved model); ` +
          `harness inspect ${run.id} draws them.`;
    return el('p', { class: 'note', text: why });
  }

  function showDetail(run) {
    const pairs = [
      ...varying.map((c) => [c, get(run, c), true]),
      ...constant.map((c) => [c, get(run, c), false]),
    ];
    const curve = { box: null, drawing: interactive(svg('svg', { role: 'img', 'aria-label': 'learning curve' })), legend: el('div', { class: 'legend' }) };
    openDrawer(
      `${run.name}`,
      el('p', { class: 'note', text: `${accuracyLabel} ${fmt(run.accuracy)}; ${seriesLabel(run.series)}${run.shape ? ', ' + run.shape : ''}. Settings that vary across the runs are in bold.` }),
      el('h3', { text: 'pictures' }),
      pictureBlock(run),
      el('h3', { text: 'learning curve' }),
      curve.drawing,
      curve.legend,
      el('h3', { text: 'epochs' }),
      epochTable(run),
      el('h3', { text: 'settings and results' }),
      keyValues(pairs)
    );
    drawCurves(curve, [run], 'data-detail-curve');
  }

  function showCompare() {
    if (state.selected.length < 2) return;
    const [a, b] = state.selected.slice(0, 2).map((i) => runs[i]);
    const differ = columns.filter((c) => JSON.stringify(get(a, c)) !== JSON.stringify(get(b, c)));
    const body = el(
      'tbody',
      {},
      ...differ.map((c) =>
        el('tr', { class: isResult(c) ? null : 'varies' }, el('th', { scope: 'row', text: c }), el('td', { text: fmt(get(a, c)) }), el('td', { text: fmt(get(b, c)) }))
      )
    );
    const head = el('tr', {}, el('th', { text: 'column' }), el('th', { text: a.name }), el('th', { text: b.name }));
    const curve = { box: null, drawing: interactive(svg('svg', { role: 'img', 'aria-label': 'learning curves of both runs' })), legend: el('div', { class: 'legend' }) };
    openDrawer(
      `${a.name} and ${b.name}`,
      el('p', { class: 'note', text: `${differ.length} columns differ (settings in bold). ${accuracyLabel}: ${fmt(a.accuracy)} and ${fmt(b.accuracy)}.` }),
      el('h3', { text: 'learning curves' }),
      curve.drawing,
      curve.legend,
      el('h3', { text: 'what differs' }),
      el('div', { class: 'table-wrap' }, el('table', { class: 'kv compare' }, el('thead', {}, head), body))
    );
    drawCurves(curve, [a, b], 'data-compare-curve');
  }

  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') drawer.hidden = true;
  });

  sortRows();
  drawCharts();
  selectionChanged();
  window.reportReady = { milliseconds: performance.now() - started, runs: runs.length };
})();
