// harness report: the page's behaviour (src/html.rs inlines this file). Reads the JSON in
// #report-data and draws, with no library and no request: the runs table (sortable,
// filterable, the columns that vary first), charts (accuracy against parameters and against
// training seconds, parallel coordinates over the settings that vary, learning curves of the
// selected runs), a run's detail, and two runs side by side. Everything works on column names:
// a column the file lacks is left out, never an error.
//
// Served by `harness serve` (DATA.live), the same page follows the runs: it asks the server
// what changed since the version it has, about every second, and folds the answer in (new and
// changed rows, the running runs with their epochs so far, the sweep's progress) without
// touching the user's sort, filters, ticks or open detail. A run's epochs are then fetched when
// its curve is first drawn, not sent with the page.
'use strict';
(function () {
  const started = performance.now();
  // What the page's opening cost, step by step (window.reportReady.phases).
  const phases = {};
  let phaseStart = started;
  const loaded = (name) => {
    const now = performance.now();
    phases[name] = now - phaseStart;
    phaseStart = now;
  };
  const DATA = JSON.parse(document.getElementById('report-data').textContent);
  loaded('parse');
  const LIVE = DATA.live || null;
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
  // Served, a run's epochs are null until fetched ([ensureEpochs]).
  const runs = DATA.rows.map((cells, i) => ({ i, cells, epochs: LIVE ? null : DATA.epochs[i] || [] }));
  const byId = new Map();
  const get = (run, name) => (has(name) ? run.cells[columnAt.get(name)] : undefined);

  const colours = new Map();
  function colourOf(series) {
    if (!colours.has(series)) colours.set(series, paletteColour(series));
    return colours.get(series);
  }
  function paletteColour(series) {
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

  function prepare(run) {
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
    byId.set(run.id, run);
  }
  for (const run of runs) prepare(run);
  const seriesLabel = (s) => (s === 'none' ? 'none (no hidden layer)' : s);

  // What is derived from all the runs, made again when runs arrive ([derive]). Which columns
  // vary is kept as each column's first value and whether another was seen, so that a new run
  // costs its own cells, not a pass over every run.
  let kinds, accuracyLabel, varying, constant, settings, sortDefault, tableColumns;
  const firstValue = new Map();
  const varies = new Set();
  // (Cells are numbers, strings or null, so that === is the equality JSON has.)
  function notice(run) {
    for (let k = 0; k < columns.length; k++) {
      const name = columns[k];
      if (varies.has(name)) continue;
      const value = run.cells[k];
      if (!firstValue.has(name)) firstValue.set(name, value);
      else if (firstValue.get(name) !== value) varies.add(name);
    }
  }
  for (const run of runs) notice(run);
  loaded('runs');
  function derive() {
    kinds = new Set(runs.filter((r) => r.accuracy !== null).map((r) => r.accuracyKind));
    accuracyLabel =
      kinds.size === 1 && kinds.has('validation')
        ? 'validation accuracy'
        : kinds.has('validation')
          ? 'accuracy (validation where held, else test)'
          : 'test accuracy';
    varying = columns.filter((c) => varies.has(c));
    constant = columns.filter((c) => !varies.has(c));
    settings = varying.filter((c) => !isResult(c));
    sortDefault = ['val_accuracy', 'test_accuracy'].find(
      (c) => has(c) && runs.some((r) => typeof get(r, c) === 'number')
    );
    // The table: name first, then the column the page ranks by and the test accuracy, then the
    // settings that vary, then the other columns that vary, then the constant ones (folded):
    // what a sweep is read for stays on screen at 1280 pixels.
    const leading = [
      ...(has('name') ? ['name'] : []),
      ...[sortDefault, 'test_accuracy'].filter((c, k, all) => c && has(c) && all.indexOf(c) === k),
    ];
    tableColumns = [
      ...leading,
      ...settings.filter((c) => !leading.includes(c)),
      ...varying.filter((c) => !leading.includes(c) && !settings.includes(c)),
      ...constant.filter((c) => !leading.includes(c)),
    ];
  }
  derive();

  const state = {
    sort: sortDefault ? { column: sortDefault, direction: -1 } : null,
    // Whether the user chose the sort (a page that started empty gets the default later).
    sortChosen: false,
    filters: new Map(),
    filterText: new Map(),
    search: '',
    selected: [],
    showConstant: false,
    // The drawer's content: { detail: run index } or { compare: true }, or null when closed.
    drawer: null,
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

  // Sort keys: numbers as they are; text in lower case with each run of digits made to sort
  // as its number ("run-9" before "run-10"), compared as plain strings: many times faster than
  // a collator over 10,000 names.
  const textKey = (text) =>
    text.toLowerCase().replace(/\d+/g, (digits) => {
      const number = digits.replace(/^0+(?=\d)/, '');
      return `\u0000${String.fromCharCode(0x20 + Math.min(number.length, 0xffd0))}${number}`;
    });
  const keyOf = (value) => (typeof value === 'number' ? value : textKey(String(value)));
  function compareKeys(a, b) {
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    const [x, y] = [typeof a === 'number' ? textKey(String(a)) : a, typeof b === 'number' ? textKey(String(b)) : b];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  // Missing values (null) after every other, in either direction.
  const isMissing = (value) => value === null || value === undefined;
  function compare(a, b) {
    if (isMissing(a) || isMissing(b)) return isMissing(a) === isMissing(b) ? 0 : isMissing(a) ? 1 : -1;
    return compareKeys(keyOf(a), keyOf(b));
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
  function summaryText() {
    const statusCounts = new Map();
    for (const run of runs) {
      const status = get(run, 'status') ?? 'unknown';
      statusCounts.set(status, (statusCounts.get(status) || 0) + 1);
    }
    return [
      `${runs.length} runs from ${DATA.source}`,
      [...statusCounts]
        .map(([s, n]) => `${n} ${s}`)
        .join(', '),
    ].join(': ');
  }
  function notes() {
    const notes = [];
    if (DATA.folded > 0) {
      notes.push(
        `${DATA.folded} earlier attempt${DATA.folded === 1 ? '' : 's'} folded away: each run_id ` +
          'shows its latest attempt that did not fail (or its latest, if all failed).'
      );
    }
    notes.push(`Accuracy in the charts is ${accuracyLabel}.`);
    const withPictures = runs.filter((r) => r.pictures);
    notes.push(
      withPictures.length > 0
        ? `Weight pictures for ${withPictures.length} run${withPictures.length === 1 ? '' : 's'} ` +
            `(the best by accuracy with a saved model, at most ${DATA.max_pictures}): ` +
            withPictures.map((r) => r.name).join(', ') + '.'
        : LIVE
          ? 'No weight pictures in the live view: harness report --html embeds them, and ' +
            'harness inspect RUN_ID draws one run\'s.'
          : 'No weight pictures: no run has a saved model beside this runs file ' +
            '(harness report --html --models DIR names another folder).'
    );
    return notes;
  }
  const summaryLine = el('p', { id: 'summary' });
  const notesBox = el('div', { id: 'notes' });
  function renderSummary() {
    summaryLine.textContent = summaryText();
    notesBox.replaceChildren(...notes().map((n) => el('p', { class: 'note', text: n })));
  }
  renderSummary();

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
    params: figure('chart-params', () => `${accuracyLabel} against parameters`),
    seconds: figure('chart-seconds', () => `${accuracyLabel} against training time`),
    parallel: figure('chart-parallel', () => `settings that vary, coloured by ${accuracyLabel}`, 'wide'),
    curves: figure('chart-curves', () => 'learning curves of the selected runs', 'wide'),
  };
  const captionCharts = () => {
    for (const chart of Object.values(charts)) chart.title.textContent = chart.caption();
  };

  // Which settings mattered (computed by harness: src/search/importance.rs), as bars.
  const importanceBox = el('div', { id: 'importance-box' });
  function renderImportance() {
    importanceBox.replaceChildren(...[importancePanel()].filter(Boolean));
  }
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

  // A chart: an SVG for its axes, labels and the few marks that are ticked or hovered, over a
  // canvas for the rest (a 10,000-run page would otherwise lay out and paint 30,000 SVG
  // elements). Its marks are data in drawing order (chart.marks), which the canvas, hovering
  // and the tests read.
  function figure(id, caption, wide) {
    const box = el('figure', { id, class: wide ? 'chart wide' : 'chart' });
    const title = el('figcaption', { text: caption() });
    const drawing = svg('svg', { role: 'img', 'aria-label': caption() });
    const canvas = el('canvas', { class: 'marks', 'aria-hidden': 'true' });
    const plot = el('div', { class: 'plot' }, canvas, drawing);
    const legend = el('div', { class: 'legend' });
    box.append(title, plot, legend);
    const chart = { box, plot, drawing, canvas, legend, title, caption, marks: [], kind: null };
    interactive(chart);
    return chart;
  }

  const table = el('table', { id: 'runs' });
  const thead = el('thead');
  const tbody = el('tbody');
  table.append(thead, tbody);
  const drawer = el('aside', { id: 'drawer', hidden: true, 'aria-live': 'polite' });

  // Served: where the sweep stands, and whether the page is still following it.
  const liveBox = el('section', { id: 'live', 'aria-live': 'polite', hidden: !LIVE });
  renderImportance();
  document.body.append(
    el(
      'header',
      {},
      el('h1', { text: LIVE ? 'harness: live view' : 'harness report' }),
      summaryLine,
      notesBox
    ),
    liveBox,
    el('section', { id: 'charts' }, ...Object.values(charts).map((c) => c.box)),
    importanceBox,
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
  // The header and the filters under it, for the columns as they are now (made again when
  // which columns vary changes; what was typed into a filter stays).
  function buildHeader() {
    headerRow.replaceChildren(el('th', { class: 'select', scope: 'col' }, el('span', { class: 'sr', text: 'select' })));
    filterRow.replaceChildren(el('th', { class: 'select' }));
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
            state.sortChosen = true;
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
          state.filterText.set(name, input.value);
          applyFilters();
        },
      });
      input.value = state.filterText.get(name) || '';
      filterRow.append(el('th', { class: folded }, input));
    }
  }
  buildHeader();
  thead.append(headerRow, filterRow);

  // Fixed column widths, from each column's longest text: the browser then lays out 1,000 rows
  // without measuring every cell again after each sort. Widths only grow as runs arrive.
  const longest = new Map(columns.map((name) => [name, name.length + 2]));
  function measure(run) {
    for (let k = 0; k < columns.length; k++) {
      const length = shownLength(run.cells[k]);
      if (length > longest.get(columns[k])) longest.set(columns[k], length);
    }
  }
  // How many characters fmt(value) has, or a few more: without formatting 540,000 numbers.
  function shownLength(value) {
    if (typeof value !== 'number') return value === null || value === undefined ? 3 : String(value).length;
    const sign = value < 0 ? 1 : 0;
    const a = Math.abs(value);
    if (Number.isInteger(value)) {
      const digits = String(a).length;
      return sign + digits + (a >= 10000 ? Math.floor((digits - 1) / 3) : 0);
    }
    if (a >= 1000) return sign + String(Math.round(a)).length;
    if (a < 1e-6) return 10;
    // Four significant digits: the digits before the point, the point, and those after.
    const e = Math.floor(Math.log10(a));
    return sign + Math.max(1, e + 1) + 1 + Math.max(0, 3 - e);
  }
  for (const run of runs) measure(run);
  loaded('widths');
  const widthOf = (name) => {
    const extra = name === 'name' || (!has('name') && name === 'run_id') ? 90 : 0;
    return Math.min(320, Math.max(64, longest.get(name) * 8.2 + 34 + extra));
  };
  function layColumns() {
    const shown = tableColumns.filter((c) => state.showConstant || !constant.includes(c));
    const widths = [40, ...shown.map((c) => widthOf(c))];
    const colgroup = el('colgroup', {}, ...widths.map((w) => el('col', { style: `width:${Math.round(w)}px` })));
    const old = table.querySelector('colgroup');
    if (old) old.replaceWith(colgroup);
    else table.prepend(colgroup);
    table.style.width = `${Math.round(widths.reduce((a, b) => a + b, 0))}px`;
  }
  layColumns();

  // Rows are made when first shown, many at a time from one HTML string, and only those in
  // and near the table's view are in the document ([paintRows]): a 10,000-run page sorts and
  // filters laying out a screenful of rows. One listener on the body serves every row.
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
  // The order of two runs under the sort as it is (then by their place in the file).
  function rowOrder() {
    if (!state.sort) return (a, b) => a.i - b.i;
    const { column, direction } = state.sort;
    const at = columnAt.get(column);
    return (a, b) => {
      const [va, vb] = [a.cells[at], b.cells[at]];
      const missing = isMissing(va) - isMissing(vb);
      if (missing !== 0) return missing;
      return (isMissing(va) ? 0 : direction * compareKeys(keyOf(va), keyOf(vb))) || a.i - b.i;
    };
  }

  // With `changed` (a few runs that arrived or changed), each is put in its place in the order
  // as it is, rather than sorting every run again. Else every run is sorted, on keys made once.
  function sortRows(changed) {
    if (changed && changed.length < 100 && order.length + changed.length >= runs.length) {
      const moved = new Set(changed);
      order = order.filter((run) => !moved.has(run));
      const before = rowOrder();
      for (const run of moved) {
        let lo = 0;
        let hi = order.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (before(order[mid], run) <= 0) lo = mid + 1;
          else hi = mid;
        }
        order.splice(lo, 0, run);
      }
    } else if (state.sort) {
      const at = columnAt.get(state.sort.column);
      const direction = state.sort.direction;
      const keyed = runs.map((run) => {
        const value = run.cells[at];
        return { run, missing: isMissing(value), key: isMissing(value) ? null : keyOf(value) };
      });
      keyed.sort(
        (a, b) => a.missing - b.missing || (a.missing ? 0 : direction * compareKeys(a.key, b.key)) || a.run.i - b.run.i
      );
      order = keyed.map((k) => k.run);
    } else {
      order = runs.slice();
    }
    for (const th of headerRow.querySelectorAll('th[data-col]')) {
      const sorted = state.sort && th.dataset.col === state.sort.column;
      if (sorted) th.setAttribute('aria-sort', state.sort.direction > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    renderRows();
  }

  // The matching runs in order, of which the rows in the table's view, and ROWS_AROUND more
  // each side, are in the document; a spacer row above and below stands for the others, so
  // that the scroll bar is as long as the whole list. Rows are of one height (one line each).
  const ROWS_AROUND = 8;
  const tableWrap = table.parentElement;
  let matching = [];
  let rowHeight = 0;
  // What the table holds now: the runs shown, and the spacers' rows above and below.
  let painted = { shown: [], above: null, below: null };
  function renderRows() {
    matching = order.filter((run) => run.visible);
    paintRows(true);
    countLine.textContent = `${matching.length} of ${runs.length} runs match`;
  }
  function spacer(rows) {
    const tr = el('tr', { class: 'spacer', 'aria-hidden': 'true' });
    tr.append(el('td', { colspan: tableColumns.length + 1, style: `height:${rows * rowHeight}px` }));
    return tr;
  }
  // The rows in view (and ROWS_AROUND each side) put in the table. When they are the rows it
  // has (an update whose runs land out of view, a scroll within the margin), only the
  // spacers change: the browser lays out no row again.
  function paintRows(again) {
    const height = rowHeight || 30;
    const below = Math.max(0, tableWrap.scrollTop - thead.offsetHeight);
    const first = Math.max(0, Math.floor(below / height) - ROWS_AROUND);
    // (The table's box is up to 75% of the window high: before its rows are in, it is less.)
    const screen = Math.ceil(Math.max(tableWrap.clientHeight, 0.75 * window.innerHeight) / height);
    const last = Math.min(matching.length, first + screen + 2 * ROWS_AROUND);
    const shown = matching.slice(first, last);
    const same =
      shown.length === painted.shown.length &&
      shown.every((run, k) => run === painted.shown[k] && run.tr && run.tr.parentNode === tbody);
    if (same && !again) return;
    if (same && (first > 0) === !!painted.above && (last < matching.length) === !!painted.below) {
      if (painted.above) painted.above.firstChild.style.height = `${first * rowHeight}px`;
      if (painted.below) painted.below.firstChild.style.height = `${(matching.length - last) * rowHeight}px`;
      return;
    }
    makeRows(shown);
    const nodes = shown.map((run) => run.tr);
    if (!rowHeight && nodes.length > 0) {
      tbody.replaceChildren(nodes[0]);
      rowHeight = nodes[0].getBoundingClientRect().height || 30;
    }
    painted = {
      shown,
      above: first > 0 ? spacer(first) : null,
      below: last < matching.length ? spacer(matching.length - last) : null,
    };
    tbody.replaceChildren(...[painted.above, ...nodes, painted.below].filter(Boolean));
  }
  let scrolled = false;
  tableWrap.addEventListener(
    'scroll',
    () => {
      if (scrolled) return;
      scrolled = true;
      requestAnimationFrame(() => {
        scrolled = false;
        paintRows();
      });
    },
    { passive: true }
  );

  let redraw = null;
  function applyFilters() {
    for (const run of runs) run.visible = passes(run);
    renderRows();
    clearTimeout(redraw);
    redraw = setTimeout(drawCharts, 120);
  }

  // `marksToo`: the chart marks of the runs ticked or unticked are marked again (an update,
  // which leaves the ticks as they are and draws new marks already marked, skips that).
  function selectionChanged(marksToo = true) {
    const chosen = new Set(state.selected);
    for (const run of runs) if (run.checkbox) run.checkbox.checked = chosen.has(run.i);
    if (marksToo) for (const chart of marked) drawPicked(chart);
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

  // Where the SVG's user units are on the screen (its viewBox is fitted, centred, into its box).
  function viewOf(chart) {
    const r = chart.drawing.getBoundingClientRect();
    const box = chart.drawing.viewBox.baseVal;
    const scale = box && box.width > 0 ? Math.min(r.width / box.width, r.height / box.height) || 1 : 1;
    const dx = box ? (r.width - box.width * scale) / 2 : 0;
    const dy = box ? (r.height - box.height * scale) / 2 : 0;
    return { r, scale, dx, dy };
  }

  // Each chart listens once for all its marks: an SVG mark with data-run names its run (the
  // curves, the ticked marks), else the chart's hit test finds the canvas mark under the
  // pointer. Hovering shows the run's numbers and outlines its mark; a click opens its detail.
  function interactive(chart) {
    const runOf = (event) => {
      const mark = event.target.closest && event.target.closest('[data-run]');
      if (mark) return runs[Number(mark.dataset.run)];
      if (!chart.kind || chart.marks.length === 0) return null;
      const view = viewOf(chart);
      const x = (event.clientX - view.r.left - view.dx) / view.scale;
      const y = (event.clientY - view.r.top - view.dy) / view.scale;
      const hit = chart.kind.hit(x, y, chart.marks);
      return hit ? hit.run : null;
    };
    const hover = (run) => {
      if (!chart.kind) return;
      const g = chart.drawing.querySelector('g.hover');
      if (!g) return;
      const mark = run && chart.marks.find((m) => m.run === run);
      g.innerHTML = mark ? chart.kind.markup(mark, 'hover') : '';
    };
    chart.plot.addEventListener('pointermove', (event) => {
      const run = runOf(event);
      if (run) showTip(event, run);
      else tip.hidden = true;
      hover(run);
    });
    chart.plot.addEventListener('pointerleave', () => {
      tip.hidden = true;
      hover(null);
    });
    chart.plot.addEventListener('click', (event) => {
      const run = runOf(event);
      if (run) showDetail(run);
    });
  }

  // A chart of the drawer (SVG only: a run's or two runs' learning curves).
  function drawerChart(label) {
    const drawing = svg('svg', { role: 'img', 'aria-label': label });
    const chart = { box: null, plot: drawing, drawing, canvas: null, legend: el('div', { class: 'legend' }), marks: [], kind: null };
    interactive(chart);
    return chart;
  }

  // ---- marks on a canvas ----
  // A chart's kind says how to draw one mark on the canvas (paint), as SVG when ticked or
  // hovered (markup), whether a run would fit the axes as drawn (fits) and which mark is at a
  // point (hit). The canvas is painted in slices of about SLICE_MS, one a frame, into a canvas
  // off the page that replaces the shown one when complete: in software, 10,000 runs' marks
  // take a few hundred milliseconds, which must freeze neither the page nor an update.
  const SLICE_MS = 24;
  const painting = new Set();
  const paintStats = { started: null, frames: 0, longest: 0, done: null };
  // `resized`: the page changed the chart's size; else, when its viewBox is as it was, the
  // last layout's view still holds (asking the page would lay it out mid-update).
  function repaint(chart, resized) {
    const box = chart.drawing.viewBox.baseVal;
    const same = !resized && chart.view && chart.view.r.width > 0 && box && chart.viewBox && box.width === chart.viewBox[0] && box.height === chart.viewBox[1];
    const view = same ? chart.view : viewOf(chart);
    chart.viewBox = box ? [box.width, box.height] : null;
    const ratio = window.devicePixelRatio || 1;
    const work = el('canvas', { class: 'marks', 'aria-hidden': 'true' });
    work.width = Math.max(1, Math.round(view.r.width * ratio));
    work.height = Math.max(1, Math.round(view.r.height * ratio));
    const context = work.getContext('2d', { willReadFrequently: true });
    context.setTransform(view.scale * ratio, 0, 0, view.scale * ratio, view.dx * ratio, view.dy * ratio);
    chart.job = { work, context, next: 0, batch: 400 };
    chart.view = view;
    chart.paintedSize = [view.r.width, view.r.height];
    if (chart.kind && chart.kind.background) chart.kind.background(context);
    if (painting.size === 0) {
      paintStats.started = performance.now();
      paintStats.frames = 0;
      paintStats.longest = 0;
      paintStats.done = null;
      requestAnimationFrame(paintSlice);
    }
    painting.add(chart);
  }
  function paintSlice() {
    const t0 = performance.now();
    for (const chart of painting) {
      const job = chart.job;
      const kind = chart.kind;
      // Marks are drawn in batches, each followed by a one-pixel read that makes the canvas
      // rasterize what it was given, so that a slice costs what it measures.
      while (kind && job.next < chart.marks.length && performance.now() - t0 < SLICE_MS) {
        const t = performance.now();
        const end = Math.min(chart.marks.length, job.next + job.batch);
        kind.begin(job.context, chart.marks.length);
        for (; job.next < end; job.next++) kind.paint(job.context, chart.marks[job.next]);
        job.context.getImageData(0, 0, 1, 1);
        const spent = performance.now() - t;
        job.batch = Math.max(50, Math.min(5000, Math.round((job.batch * SLICE_MS) / 2 / Math.max(spent, 0.5))));
      }
      if (kind && job.next < chart.marks.length) break;
      chart.canvas.replaceWith(job.work);
      chart.canvas = job.work;
      chart.job = null;
      painting.delete(chart);
    }
    const spent = performance.now() - t0;
    paintStats.frames += 1;
    paintStats.longest = Math.max(paintStats.longest, spent);
    if (painting.size > 0) requestAnimationFrame(paintSlice);
    else paintStats.done = performance.now();
  }
  // Marks for a few runs that arrived or changed, when the chart as drawn has room for them:
  // the new ones painted over the rest, not the whole chart again. False when it has not.
  function addMarks(chart, changed) {
    const kind = chart.kind;
    if (!kind || !kind.current(chart.marks.length + changed.length)) return false;
    const marked = new Set(chart.marks.map((m) => m.run));
    const added = [];
    for (const run of changed) {
      // A run whose mark is drawn already cannot be taken off a canvas without a repaint.
      if (marked.has(run)) return false;
      const mark = kind.mark(run);
      if (mark === null) continue;
      if (!kind.fits(mark)) return false;
      added.push(mark);
    }
    chart.marks.push(...added);
    if (!chart.job) {
      // Where the canvas was last laid out (a resize paints it again): asking the page now
      // would make the browser lay it out in the middle of the update.
      const view = chart.view;
      const ratio = window.devicePixelRatio || 1;
      const context = chart.canvas.getContext('2d', { willReadFrequently: true });
      context.setTransform(view.scale * ratio, 0, 0, view.scale * ratio, view.dx * ratio, view.dy * ratio);
      kind.begin(context, chart.marks.length);
      for (const mark of added) kind.paint(context, mark);
    }
    kind.legend();
    drawPicked(chart);
    return true;
  }
  // The ticked runs' marks, in the SVG over the canvas.
  function drawPicked(chart) {
    const g = chart.drawing.querySelector('g.picked');
    if (!g || !chart.kind) return;
    const chosen = new Set(state.selected);
    g.innerHTML = chart.marks
      .filter((m) => chosen.has(m.run.i))
      .map((m) => chart.kind.markup(m, 'selected'))
      .join('');
  }
  // The chart's marks, drawn: the canvas repainted, the ticked and hovered groups made.
  function drawMarks(chart, kind, marks) {
    chart.kind = kind;
    chart.marks = marks;
    chart.drawing.append(svg('g', { class: 'picked' }), svg('g', { class: 'hover' }));
    drawPicked(chart);
    kind.legend();
    repaint(chart);
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

  // The frame, the ticks and their labels, and (unless `grid` is false, where the chart's
  // canvas draws it under the marks) the grid lines.
  function axes(drawing, x, y, xLabel, yLabel, BOX, grid = true) {
    const g = svg('g', { class: 'axes' });
    const [x0, x1] = [BOX.left, BOX.width - BOX.right];
    const [y0, y1] = [BOX.height - BOX.bottom, BOX.top];
    g.append(svg('rect', { x: x0, y: y1, width: x1 - x0, height: y0 - y1, class: 'frame' }));
    for (const t of x.ticks) {
      const px = x.at(t);
      if (grid) g.append(svg('line', { x1: px, x2: px, y1: y1, y2: y0, class: 'grid' }));
      g.append(svg('text', { x: px, y: y0 + 15, 'text-anchor': 'middle' }, fmt(t)));
    }
    for (const t of y.ticks) {
      const py = y.at(t);
      if (grid) g.append(svg('line', { x1: x0, x2: x1, y1: py, y2: py, class: 'grid' }));
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
    chart.kind = null;
    chart.marks = [];
    chart.job = null;
    painting.delete(chart);
    if (chart.canvas) chart.canvas.width = 1; // and cleared
    chart.drawing.replaceChildren();
    chart.drawing.style.display = 'none';
    chart.legend.replaceChildren(el('p', { class: 'note empty', text }));
  }

  // ---- accuracy against a column (log axis) ----
  // Smaller, fainter marks as runs pile up, so that dense columns still show their spread.
  const radiusFor = (count) => (count > 400 ? 2.6 : count > 100 ? 3.4 : 4.5);
  function drawScatter(chart, column, quantity) {
    const wants = (run) =>
      run.visible && run.accuracy !== null && typeof get(run, column) === 'number' && get(run, column) > 0;
    const shown = runs.filter(wants);
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
    axes(chart.drawing, x, y, `${quantity}${log ? ' (log scale)' : ''}`, accuracyLabel, BOX, false);
    const radius = radiusFor(shown.length);
    const label = accuracyLabel;
    const inside = (v, [lo, hi]) => v >= lo && v <= hi;
    const kind = {
      mark: (run) =>
        wants(run) ? { run, x: x.at(get(run, column)), y: y.at(run.accuracy), fill: run.colour } : null,
      fits: (mark) => inside(get(mark.run, column), xDomain) && inside(mark.run.accuracy, yDomain),
      current: (count) => radiusFor(count) === radius && accuracyLabel === label,
      background: (context) => {
        const [x0, x1] = [BOX.left, BOX.width - BOX.right];
        const [y0, y1] = [BOX.height - BOX.bottom, BOX.top];
        context.beginPath();
        for (const t of x.ticks) context.rect(x.at(t), y1, 0, y0 - y1);
        for (const t of y.ticks) context.rect(x0, y.at(t), x1 - x0, 0);
        context.strokeStyle = '#eceff2';
        context.lineWidth = 1;
        context.stroke();
      },
      begin: (context, count) => {
        context.globalAlpha = count > 100 ? 0.55 : 1;
        context.strokeStyle = '#fff';
        context.lineWidth = 0.6;
      },
      paint: (context, mark) => {
        context.beginPath();
        context.arc(mark.x, mark.y, radius, 0, 2 * Math.PI);
        context.fillStyle = mark.fill;
        context.fill();
        context.stroke();
      },
      markup: (mark, what) =>
        `<circle cx="${mark.x.toFixed(1)}" cy="${mark.y.toFixed(1)}" r="${radius}" fill="${mark.fill}" ` +
        `data-run="${mark.run.i}" data-series="${escape(mark.run.series)}" class="point ${what}"/>`,
      // The nearest mark within reach of the pointer; of equals, the one drawn last (on top).
      hit: (px, py, marks) => {
        let best = null;
        let reach = (radius + 2) ** 2;
        for (const mark of marks) {
          const d = (mark.x - px) ** 2 + (mark.y - py) ** 2;
          if (d <= reach) {
            best = mark;
            reach = d;
          }
        }
        return best;
      },
      legend: () => seriesLegend(chart.legend, chart.marks.map((m) => m.run)),
    };
    drawMarks(chart, kind, shown.map(kind.mark));
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
  const STOPS_RGB = ACCURACY_STOPS.map((h) => [1, 3, 5].map((o) => parseInt(h.slice(o, o + 2), 16)));
  function accuracyColour(t) {
    t = Math.max(0, Math.min(1, t));
    const k = Math.min(ACCURACY_STOPS.length - 2, Math.floor(t * (ACCURACY_STOPS.length - 1)));
    const f = t * (ACCURACY_STOPS.length - 1) - k;
    const [a, b] = [STOPS_RGB[k], STOPS_RGB[k + 1]];
    return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * f)).join(',')})`;
  }  // The ramp in 256 steps, made once: a line's colour is then looked up, not composed.
  const RAMP = Array.from({ length: 256 }, (_, k) => accuracyColour(k / 255));


  // An axis: its values in order, evenly spaced, when they are few or not all numbers (a value
  // the axis has not seen has no place: `at` gives undefined); else a linear or log scale.
  function parallelAxis(name, values, top, bottom) {
    const numbers = values.every((v) => v === null || typeof v === 'number');
    const unique = [...new Set(values.map((v) => (v === undefined ? null : v)))];
    if (!numbers || unique.length <= 10) {
      unique.sort(compare);
      const step = unique.length > 1 ? (bottom - top) / (unique.length - 1) : 0;
      const place = new Map(unique.map((v, k) => [v, unique.length > 1 ? bottom - k * step : (top + bottom) / 2]));
      const label = (v) => (v === '' ? '(empty)' : fmt(v));
      return { name, at: (v) => place.get(v === undefined ? null : v), ticks: unique, label };
    }
    const range = extent(values);
    const log = wantsLog(range, false);
    const at = scale(range, [bottom, top], log);
    return {
      name: log ? `${name} (log)` : name,
      at: (v) => (v === null || v === undefined ? bottom + 14 : at(v)),
      ticks: ticks(range, log),
      label: fmt,
    };
  }

  function drawParallel(chart) {
    const wants = (run) => run.visible && run.accuracy !== null;
    const shown = runs.filter(wants);
    chart.legend.replaceChildren();
    const names = settings.slice(0, 10);
    if (names.length === 0) return message(chart, 'no setting varies across these runs');
    if (shown.length === 0) return message(chart, 'no run to show');
    // One unit a pixel at the figure's width, so that text keeps its size on any screen.
    // (The figure's width as last measured: a resize measures it again.)
    if (!chart.boxWidth) chart.boxWidth = chart.box.clientWidth;
    const width = Math.max(110 * (names.length + 1), chart.boxWidth - 24 || 480, 360);
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
    const span = accRange[1] - accRange[0] || 1;
    const ats = all.map((axis) => axis.at);
    const at = names.map((name) => columnAt.get(name));
    const opacity = shown.length > 50 ? Math.max(0.12, Math.min(0.55, 6 / Math.sqrt(shown.length))) : 0.6;
    const label = accuracyLabel;
    const kind = {
      mark: (run) => {
        if (!wants(run)) return null;
        const ys = new Array(all.length);
        for (let k = 0; k < at.length; k++) ys[k] = ats[k](run.cells[at[k]]);
        ys[at.length] = accAxis.at(run.accuracy);
        return { run, ys, stroke: RAMP[Math.round(Math.max(0, Math.min(1, (run.accuracy - accRange[0]) / span)) * 255)] };
      },
      fits: (mark) =>
        mark.run.accuracy >= accRange[0] &&
        mark.run.accuracy <= accRange[1] &&
        mark.ys.every((y) => typeof y === 'number' && Number.isFinite(y) && y >= top - 0.5 && y <= bottom + 14.5),
      current: () => settings.slice(0, 10).join('\n') === names.join('\n') && accuracyLabel === label,
      // Hairlines (one pixel wide): the fast way a canvas draws thousands of lines.
      begin: (context) => {
        context.globalAlpha = opacity;
        context.lineWidth = 1;
      },
      paint: (context, mark) => {
        context.beginPath();
        mark.ys.forEach((y, k) => (k === 0 ? context.moveTo(xs[k], y) : context.lineTo(xs[k], y)));
        context.strokeStyle = mark.stroke;
        context.stroke();
      },
      markup: (mark, what) =>
        `<polyline points="${mark.ys.map((y, k) => `${xs[k].toFixed(1)},${y.toFixed(1)}`).join(' ')}" ` +
        `stroke="${mark.stroke}" data-run="${mark.run.i}" class="line ${what}"/>`,
      // The line nearest the pointer, between the two axes it is between; the top one of equals.
      hit: (px, py, marks) => {
        const k = xs.findIndex((x, j) => j < xs.length - 1 && px >= x && px <= xs[j + 1]);
        if (k < 0) return null;
        const t = (px - xs[k]) / (xs[k + 1] - xs[k]);
        let best = null;
        let reach = 5;
        for (let j = marks.length - 1; j >= 0; j--) {
          const ys = marks[j].ys;
          const d = Math.abs(ys[k] + t * (ys[k + 1] - ys[k]) - py);
          if (d < reach) {
            best = marks[j];
            reach = d;
          }
        }
        return best;
      },
      legend: () => {
        const gradient = ACCURACY_STOPS.map((c, k) => `${c} ${(100 * k) / (ACCURACY_STOPS.length - 1)}%`).join(', ');
        chart.legend.replaceChildren(
          el('span', { class: 'key' }, `${accuracyLabel} ${fmt(accRange[0])}`),
          el('span', { class: 'ramp', style: `background:linear-gradient(to right, ${gradient})` }),
          el('span', { class: 'key' }, fmt(accRange[1]))
        );
        if (settings.length > names.length) {
          chart.legend.append(el('span', { class: 'key' }, `(first ${names.length} of ${settings.length} settings)`));
        }
      },
    };
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
    // Best drawn last, on top.
    const ordered = shown.slice().sort((a, b) => a.accuracy - b.accuracy || a.i - b.i);
    drawMarks(chart, kind, ordered.map(kind.mark));
  }

  // ---- learning curves ----
  const DASHES = [null, '6 3', '2 3', '8 3 2 3'];
  function curveOf(run) {
    const column =
      run.accuracyKind === 'validation' && epochAt.has('val_accuracy') ? 'val_accuracy' : 'test_accuracy';
    if (!epochAt.has(column)) return [];
    const e = epochAt.get('epoch');
    return (run.epochs || [])
      .map((row, k) => [e === undefined ? k + 1 : row[e], row[epochAt.get(column)]])
      .filter(([x, y]) => typeof x === 'number' && typeof y === 'number');
  }

  function drawCurves(chart, chosen, attribute) {
    chart.legend.replaceChildren();
    if (chosen.length === 0) {
      return message(chart, 'Tick runs in the table to draw their learning curves here.');
    }
    const loading = ensureEpochs(chosen);
    const curves = chosen.map((run) => ({ run, points: curveOf(run) })).filter((c) => c.points.length > 0);
    if (curves.length === 0) {
      return message(
        chart,
        loading ? 'Loading the epochs of the selected runs…'
          : chosen.some((r) => r.live) ? 'No epoch has ended yet.'
          : 'The selected runs have no epochs in the epochs file.'
      );
    }
    const xRange = extent(curves.flatMap((c) => c.points.map((p) => p[0])));
    const yRange = pad(extent(curves.flatMap((c) => c.points.map((p) => p[1]))), false);
    const xDomain = [Math.min(xRange[0], 1) - 0.3, xRange[1] + 0.3];
    // As wide as its box, one unit a pixel: a wide box gets a wide chart, not a taller one.
    const room = chart.box ? chart.box.clientWidth - 24 : chart.drawing.parentElement ? chart.drawing.parentElement.clientWidth - 24 : 0;
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

  const marked = [charts.params, charts.seconds, charts.parallel];
  function drawMarkCharts() {
    drawScatter(charts.params, 'params', 'parameters (weights and biases)');
    drawScatter(charts.seconds, 'train_seconds', 'training time (seconds)');
    drawParallel(charts.parallel);
  }
  function drawCharts() {
    drawMarkCharts();
    drawCurves(charts.curves, state.selected.map((i) => runs[i]));
  }
  // A window resized: the canvases painted again at their new size (the SVGs scale by
  // themselves).
  const resized = new ResizeObserver(() => {
    for (const chart of marked) {
      const size = chart.drawing.getBoundingClientRect();
      const was = chart.paintedSize || [0, 0];
      if (chart.kind && (Math.abs(size.width - was[0]) > 1 || Math.abs(size.height - was[1]) > 1)) {
        chart.boxWidth = null;
        repaint(chart, true);
      }
    }
  });
  for (const chart of marked) resized.observe(chart.plot);

  // ---- the drawer: a run's detail, or two runs side by side ----
  function openDrawer(title, ...content) {
    const close = el('button', {
      type: 'button',
      class: 'close',
      text: 'close',
      onclick: () => {
        drawer.hidden = true;
        state.drawer = null;
      },
    });
    const scroll = drawer.hidden ? 0 : drawer.scrollTop;
    drawer.replaceChildren(el('div', { class: 'drawer-head' }, el('h2', { text: title }), close), ...content);
    const again = !drawer.hidden;
    drawer.hidden = false;
    // Drawn again by an update: where the user had scrolled to stays.
    drawer.scrollTop = again ? scroll : 0;
  }

  function keyValues(pairs) {
    const body = el('tbody');
    for (const [key, value, emphasis] of pairs) {
      body.append(el('tr', { class: emphasis ? 'varies' : null }, el('th', { scope: 'row', text: key }), el('td', { text: fmt(value) })));
    }
    return el('table', { class: 'kv' }, body);
  }

  function epochTable(run) {
    if (run.epochs === null) return el('p', { class: 'note', text: 'Loading this run\'s epochs…' });
    if (run.epochs.length === 0) {
      const why = run.live ? 'No epoch of this run has ended yet.' : 'No epochs for this run in the epochs file.';
      return el('p', { class: 'note', text: why });
    }
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

  function showDetail(run, again) {
    if (!again && drawer.hidden === false && state.drawer && state.drawer.detail === run.i) again = true;
    state.drawer = { detail: run.i };
    if (!again) drawer.hidden = true;
    const pairs = [
      ...varying.map((c) => [c, get(run, c), true]),
      ...constant.map((c) => [c, get(run, c), false]),
    ];
    const curve = drawerChart('learning curve');
    openDrawer(
      `${run.name}`,
      el('p', { class: 'note', text: `${run.live ? `Running: ${run.epochs ? run.epochs.length : 0} of ${run.planned} epochs so far. ` : ''}${accuracyLabel} ${fmt(run.accuracy)}; ${seriesLabel(run.series)}${run.shape ? ', ' + run.shape : ''}. Settings that vary across the runs are in bold.` }),
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

  function showCompare(again) {
    if (state.selected.length < 2) return;
    state.drawer = { compare: true };
    if (!again) drawer.hidden = true;
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
    const curve = drawerChart('learning curves of both runs');
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
    if (event.key === 'Escape') {
      drawer.hidden = true;
      state.drawer = null;
    }
  });

  // The drawer again, for runs that changed (their epochs arrived, or an update came).
  function redrawDrawer() {
    if (drawer.hidden || !state.drawer) return;
    if (state.drawer.compare) showCompare(true);
    else if (state.drawer.detail !== undefined) showDetail(runs[state.drawer.detail], true);
  }

  // ---- served: epochs on demand, and what changed since the page's version ----
  // Fetches the epochs of the given runs that have none yet (served pages only); returns
  // whether any is still on its way. When they come, the curves and the drawer are drawn again.
  function ensureEpochs(list) {
    if (!LIVE) return false;
    let waiting = false;
    for (const run of list) {
      if (run.live || (run.epochs !== null && !run.stale)) continue;
      waiting = waiting || run.epochs === null;
      if (run.loading) continue;
      run.loading = true;
      fetch(`${LIVE.epochs}?run=${encodeURIComponent(run.id)}`)
        .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
        .then((answer) => {
          run.loading = false;
          if (run.live) return; // running again meanwhile: its feed has its epochs
          run.epochs = answer.epochs;
          run.stale = false;
          drawCurves(charts.curves, state.selected.map((i) => runs[i]));
          redrawDrawer();
        })
        .catch(() => {
          run.loading = false;
          if (run.epochs === null) run.epochs = [];
        });
    }
    return waiting;
  }

  const liveState = {
    version: LIVE ? LIVE.version : 0,
    generation: LIVE ? LIVE.generation : 0,
    updates: 0,
    failures: 0,
    // The milliseconds each update took to fold in, the last first.
    costs: [],
    history: [],
    redraw: null,
    last: null,
    progress: null,
    problems: [],
  };
  window.reportLive = liveState;

  function duration(seconds) {
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function renderLive() {
    if (!LIVE) return;
    const p = liveState.progress;
    const lines = [];
    const when = liveState.last ? liveState.last.toLocaleTimeString('en-GB') : 'not yet';
    const connection =
      liveState.failures > 0
        ? `cannot reach harness serve (${liveState.failures} tries); trying again`
        : `live: updated ${when}`;
    lines.push(el('p', { id: 'live-status', class: liveState.failures > 0 ? 'offline' : 'online', text: connection }));
    const running = runs.filter((r) => r.live).length;
    if (p && p.points > 0) {
      const where = [p.experiments.join(', '), p.stages.join(', ')].filter(Boolean).join(', ');
      const left =
        p.seconds_left === null
          ? 'time left: after the first epoch'
          : `about ${duration(p.seconds_left)} left (${p.epochs_left} epochs at ${fmt(p.seconds_per_epoch)} s an epoch, from ${p.epochs_measured} measured)`;
      lines.push(
        el('p', {
          id: 'progress',
          text: `sweep ${where}: ${p.ok + p.failed} of ${p.points} points done (${p.ok} ok, ${p.failed} failed), ${p.running} running, ${p.pending} pending; ${left}`,
        }),
        el('progress', { id: 'progress-bar', max: p.points, value: p.ok + p.failed })
      );
    } else {
      lines.push(el('p', { id: 'progress', text: running > 0 ? `${running} run${running === 1 ? '' : 's'} training; no sweep plan beside these runs` : 'no run is training now' }));
    }
    for (const problem of liveState.problems.slice(0, 5)) lines.push(el('p', { class: 'note problem', text: problem }));
    liveBox.replaceChildren(...lines);
  }

  // Folds one answer of /api/updates in: committed rows that are new or changed, then the
  // running runs (all of them, each time). The user's sort, filters, ticks and drawer stay.
  function applyUpdate(answer) {
    const t0 = performance.now();
    if (answer.reload) {
      location.reload();
      return;
    }
    const headerBefore = JSON.stringify([tableColumns, constant]);
    const changed = [];
    const add = (cells) => {
      const id = String(cells[columnAt.get('run_id')]);
      let run = byId.get(id);
      if (!run) {
        run = { i: runs.length, cells, epochs: null, visible: true };
        runs.push(run);
      } else {
        run.cells = cells;
        run.tr = null;
      }
      prepare(run);
      notice(run);
      measure(run);
      changed.push(run);
      return run;
    };
    for (const cells of answer.rows) {
      const run = add(cells);
      run.live = false;
      run.committed = cells;
      // Its epochs are the file's now: fetched again when needed (the feed's until then).
      run.stale = true;
    }
    const nowRunning = new Set();
    for (const live of answer.running) {
      const run = add(live.cells);
      run.live = true;
      run.planned = live.planned_epochs;
      run.epochs = live.epochs;
      nowRunning.add(run.id);
    }
    // Runs that stopped running without a committed row: killed. Back to their last
    // committed row if they have one, else shown as interrupted.
    for (const run of runs) {
      if (!run.live || nowRunning.has(run.id)) continue;
      run.live = false;
      run.tr = null;
      if (run.committed) {
        run.cells = run.committed;
        run.stale = true;
      } else {
        run.cells = run.cells.slice();
        if (has('status')) run.cells[columnAt.get('status')] = 'interrupted';
      }
      prepare(run);
      changed.push(run);
    }
    liveState.version = answer.version;
    liveState.generation = answer.generation;
    liveState.progress = answer.progress;
    liveState.problems = answer.problems;
    DATA.folded = answer.folded;
    DATA.importance = answer.importance;
    if (changed.length > 0) {
      derive();
      if (!state.sortChosen && !state.sort && sortDefault) state.sort = { column: sortDefault, direction: -1 };
      const rebuilt = JSON.stringify([tableColumns, constant]) !== headerBefore;
      if (rebuilt) {
        for (const run of runs) run.tr = null;
        buildHeader();
        layColumns();
        foldButton.textContent = foldLabel();
        foldButton.hidden = constant.length === 0;
      }
      for (const run of changed) run.visible = passes(run);
      const phases = {};
      const phase = (name, work) => {
        const t = performance.now();
        work();
        phases[name] = performance.now() - t;
      };
      phase('summary', () => {
        captionCharts();
        renderSummary();
        renderImportance();
      });
      const sameColumns = !rebuilt;
      phase('sort', () => sortRows(sameColumns ? changed : null));
      phase('charts', () => {
        liveState.redraw = 'added';
        if (!sameColumns || !marked.every((chart) => addMarks(chart, changed))) {
          liveState.redraw = 'full';
          drawMarkCharts();
        }
      });
      phase('selection', () => selectionChanged(false));
      phase('drawer', redrawDrawer);
      liveState.phases = phases;
    }
    liveState.updates += 1;
    liveState.last = new Date();
    renderLive();
    const ms = performance.now() - t0;
    liveState.costs.unshift(ms);
    liveState.costs.length = Math.min(liveState.costs.length, 20);
    // Each update that changed something: how many rows it brought, what it cost, and whether
    // the charts were drawn again whole or had marks added.
    // Then, once the charts are painted again and a frame is drawn: the milliseconds until
    // the update was all on screen (shown_ms), and the longest the page was busy at a time
    // (longest_ms: the update, or a slice of painting).
    if (changed.length > 0) {
      const entry = { rows: answer.rows.length, running: answer.running.length, ms, charts: liveState.redraw, phases: liveState.phases, shown_ms: null, longest_ms: null };
      liveState.history.push(entry);
      if (liveState.history.length > 100) liveState.history.shift();
      const settle = () => {
        if (painting.size > 0) return requestAnimationFrame(settle);
        setTimeout(() => {
          entry.shown_ms = performance.now() - t0;
          entry.longest_ms = Math.max(ms, liveState.redraw === 'full' ? paintStats.longest : 0);
        }, 0);
      };
      requestAnimationFrame(settle);
    }
  }

  function poll() {
    const url = `${LIVE.updates}?since=${liveState.version}&generation=${liveState.generation}`;
    fetch(url, { cache: 'no-store' })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((answer) => {
        liveState.failures = 0;
        applyUpdate(answer);
        setTimeout(poll, LIVE.interval_ms);
      })
      .catch(() => {
        liveState.failures += 1;
        renderLive();
        setTimeout(poll, Math.min(10000, LIVE.interval_ms * (1 + liveState.failures)));
      });
  }

  loaded('page');
  sortRows();
  loaded('table');
  drawCharts();
  loaded('charts');
  selectionChanged();
  loaded('selection');
  // When the script ended (milliseconds since it began), what each step cost, and (painted,
  // since the navigation began) when the first frame after it was drawn.
  window.reportReady = { milliseconds: performance.now() - started, runs: runs.length, phases, painted: null };
  requestAnimationFrame(() =>
    setTimeout(() => {
      window.reportReady.painted = performance.now();
    }, 0)
  );
  // For tests and for measuring: each chart's marks as drawn (in order) and the painting's cost.
  window.reportCharts = {
    marks: (name) =>
      charts[name].marks.map((m) => ({ run: m.run.id, series: m.run.series, fill: m.fill || null, stroke: m.stroke || null, x: m.x, y: m.y })),
    paint: paintStats,
    painting: () => painting.size > 0,
  };
  if (LIVE) {
    renderLive();
    poll();
  }
})();
