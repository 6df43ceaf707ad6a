// moodboard web app: fills the server-rendered page shells from the JSON API.
// No dependencies. Every call carries the shopper's id (named by the server) as `user`.
"use strict";

(() => {
  const app = document.getElementById("app");
  const page = app.dataset.page;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // ---- the shopper: the server names them ("anon-<random>") in a signed session cookie, which
  // lets them write their own boards, and renders the public key their events are posted with.
  const user = app.dataset.user;
  const publicKey = app.dataset.key;

  // ---- API ----
  function apiUrl(path, params = {}) {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, v);
    }
    u.searchParams.set("user", user);
    return u.pathname + u.search;
  }

  async function api(path, { params = {}, json = null, form = null } = {}) {
    const opts = { method: json || form ? "POST" : "GET", headers: { Accept: "application/json" } };
    if (json) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(json);
    } else if (form) {
      form.set("user", user);
      opts.body = form;
    }
    const res = await fetch(apiUrl(path, params), opts);
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const d = body && body.detail;
      const msg = typeof d === "string" ? d : d ? JSON.stringify(d) : "";
      const err = new Error(msg || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function compact(obj) {
    return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined));
  }

  // Fire-and-forget; keepalive lets the request finish while the browser navigates away.
  function postEvent(event) {
    const body = JSON.stringify({ events: [compact({ user_id: user, ...event })] });
    try {
      fetch(apiUrl("/events"), {
        method: "POST",
        keepalive: true,
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + publicKey },
        body,
      })
        .then((r) => r.ok || console.warn("event rejected", r.status))
        .catch((e) => console.warn("event not sent", e));
    } catch (e) {
      console.warn("event not sent", e);
    }
  }

  // ---- small DOM helpers ----
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function status(message, isError = true) {
    const s = $("status");
    s.textContent = message;
    s.classList.toggle("error", isError);
    s.hidden = !message;
  }

  const fail = (what) => (e) => status(`${what} failed: ${e.message}`);

  // "baseColour" -> "Base colour"
  const label = (key) => {
    const words = key.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
    return words.charAt(0).toUpperCase() + words.slice(1);
  };

  const money = (p) => (p === null || p === undefined ? "" : Number(p).toFixed(2));

  function image(src, alt, lazy = true) {
    if (!src) return el("div", { class: "noimg" }, "no image");
    const img = el("img", { src, alt, loading: lazy ? "lazy" : null });
    img.addEventListener("error", () => img.replaceWith(el("div", { class: "noimg" }, "no image")));
    return img;
  }

  // One result. `served` is the page it came from ({request_id, surface}), used by the click event.
  function pin(item, served, position) {
    return el(
      "a",
      {
        class: "pin",
        href: "/p/" + enc(item.id),
        "data-id": item.id,
        "data-position": item.position ?? position,
        "data-surface": served.surface || page,
        "data-request-id": served.request_id,
      },
      image(item.image_url, item.title),
      el("span", { class: "pin-title" }, item.title),
      el("span", { class: "pin-price" }, money(item.price)),
    );
  }

  // ---- masonry: items in rank order across the row, each into the shortest column (as
  // Pinterest's grid does; CSS columns would run rank order down each column instead). The
  // column count follows the grid's width, two at least (phones); a resize that changes it
  // lays the items out again in rank order.
  const COLUMN_MIN_PX = 200;
  const GAP_PX = 14;

  function masonry(grid) {
    if (grid.masonry) return grid.masonry;
    const items = [];
    let cols = [];
    const count = () => Math.max(2, Math.floor((grid.clientWidth + GAP_PX) / (COLUMN_MIN_PX + GAP_PX)));
    function build(n) {
      cols = Array.from({ length: n }, (_, i) => el("div", { class: "col", "data-col": i }));
      grid.replaceChildren(...cols);
    }
    function place(node) {
      let best = cols[0];
      for (const c of cols) if (c.offsetHeight < best.offsetHeight - 1) best = c; // leftmost on ties
      best.append(node);
    }
    const m = {
      add(node) {
        if (!cols.length) build(count());
        items.push(node);
        place(node);
      },
      clear() {
        items.length = 0;
        build(count());
      },
      relayout() {
        if (!cols.length || count() === cols.length) return;
        build(count());
        for (const node of items) place(node);
      },
      get size() {
        return items.length;
      },
    };
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(m.relayout, 100);
    });
    grid.masonry = m;
    return m;
  }

  // ---- clicks: post a click event and remember where the item was found (for a later save) ----
  const ctxKey = (id) => "moodboard.ctx." + id;

  function onPinClick(ev) {
    const a = ev.target.closest && ev.target.closest("a.pin");
    if (!a || (ev.type === "auxclick" && ev.button !== 1)) return;
    const ctx = compact({
      request_id: a.dataset.requestId || null,
      position: a.dataset.position ? Number(a.dataset.position) : null,
      surface: a.dataset.surface || page,
    });
    try {
      sessionStorage.setItem(ctxKey(a.dataset.id), JSON.stringify(ctx));
    } catch (e) { /* ignore */ }
    const query = page === "search" ? $("grid").dataset.q : null;
    postEvent({ type: "click", item_id: a.dataset.id, query, ...ctx });
  }
  document.addEventListener("click", onPinClick);
  document.addEventListener("auxclick", onPinClick);

  function recallContext(id) {
    try {
      return JSON.parse(sessionStorage.getItem(ctxKey(id))) || {};
    } catch (e) {
      return {};
    }
  }

  // ---- a paged grid: "More" button, also pressed automatically when it scrolls into view ----
  // `path` overrides the grid's endpoint; `onPage(served)` takes what it shows elsewhere (the
  // home page's rows of modules) and returns the items left for the grid.
  function feed(grid, params = {}, { path = null, onPage = (served) => served.items } = {}) {
    const more = $("more");
    const seen = new Set();
    const cells = masonry(grid);
    let cursor = null;
    let busy = false;
    let done = false;
    const observer = "IntersectionObserver" in window
      ? new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && next(), {
        rootMargin: "400px",
      })
      : null;

    async function next() {
      if (busy || done) return;
      busy = true;
      more.disabled = true;
      grid.setAttribute("aria-busy", "true");
      try {
        const served = await api(path || grid.dataset.endpoint, {
          params: { ...params, k: grid.dataset.k, q: grid.dataset.q, cursor },
        });
        const fresh = new Set(served.items.filter((it) => !seen.has(it.id)).map((it) => it.id));
        for (const id of fresh) seen.add(id);
        for (const item of onPage(served)) if (fresh.has(item.id)) cells.add(pin(item, served, item.position));
        const added = fresh.size;
        cursor = served.next_cursor;
        done = !cursor || added === 0;
        if ($("empty")) $("empty").hidden = seen.size > 0;
      } catch (e) {
        done = true;
        if (e.status !== 404) fail("Loading results")(e); // a missing item/board: the page says so
      } finally {
        busy = false;
        more.disabled = false;
        more.hidden = done;
        grid.setAttribute("aria-busy", "false");
        if (observer && !done) {
          observer.unobserve(more); // re-observing reports the current state again
          observer.observe(more);
        }
      }
    }

    more.addEventListener("click", next);
    next();
  }

  // ---- pages ----
  async function productPage() {
    const id = app.dataset.itemId;
    feed($("grid"));
    setupSave(id);
    try {
      const p = await api("/products/" + enc(id));
      document.title = p.title + " · moodboard";
      $("product-title").textContent = p.title;
      $("product-price").textContent = money(p.price);
      const facts = { Brand: p.brand, Category: p.category, ...(p.attributes || {}) };
      $("product-facts").replaceChildren(
        ...Object.entries(facts)
          .filter(([, v]) => v !== null && v !== undefined && v !== "")
          .flatMap(([k, v]) => [el("dt", {}, label(k)), el("dd", {}, String(v))]),
      );
      $("product-description").textContent = p.description || "";
      if (p.image_url) {
        const img = $("product-img");
        img.src = p.image_url;
        img.alt = p.title;
        img.hidden = false;
      }
    } catch (e) {
      $("product-title").textContent = e.status === 404 ? "Product not found" : "Error";
      $("save-form").hidden = true;
      if (e.status !== 404) fail("Loading the product")(e);
    } finally {
      $("product").setAttribute("aria-busy", "false");
    }
  }

  function setupSave(id) {
    const form = $("save-form");
    const select = $("save-board");
    const title = $("save-new-title");
    const toggle = () => (title.hidden = select.value !== "__new__");
    select.addEventListener("change", toggle);
    api(`/users/${enc(user)}/boards`)
      .then(({ boards }) => {
        for (const b of boards) select.append(el("option", { value: b.id }, b.title || b.id));
        if (boards.length) select.value = boards[boards.length - 1].id;
        toggle();
      })
      .catch(fail("Loading your boards"));

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("save-button").disabled = true;
      try {
        let boardId = select.value;
        if (boardId === "__new__") {
          const board = await api("/boards", {
            json: { user_id: user, title: title.value.trim() || "My board" },
          });
          boardId = board.id;
          select.append(el("option", { value: board.id }, board.title || board.id));
          select.value = board.id;
          title.value = "";
          toggle();
        }
        // The server records the membership and logs the save event itself.
        const ctx = recallContext(id);
        await api(`/boards/${enc(boardId)}/items`, {
          json: compact({ item_id: id, user_id: user, surface: "product", ...ctx }),
        });
        const saved = $("saved");
        const name = select.selectedOptions[0].textContent;
        saved.replaceChildren("Saved to ", el("a", { href: "/b/" + enc(boardId), id: "saved-link" }, name));
        saved.dataset.boardId = boardId;
        saved.hidden = false;
        status("", false);
      } catch (e) {
        fail("Saving")(e);
      } finally {
        $("save-button").disabled = false;
      }
    });
  }

  function visualPage() {
    const preview = $("visual-preview");
    const area = $("crop-area");
    const box = $("crop-box");
    const boxes = $("object-boxes");
    const row = $("object-row");
    let file = null;
    let crop = null; // [x, y, w, h] in the original image's pixels
    let start = null;
    let objects = []; // the served page's detected objects

    const clearCrop = () => {
      crop = null;
      box.hidden = true;
      $("visual-clear").disabled = true;
    };
    const clearObjects = () => {
      objects = [];
      boxes.replaceChildren();
      row.replaceChildren();
      row.hidden = true;
    };

    $("visual-file").addEventListener("change", (ev) => {
      file = ev.target.files[0] || null;
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.src = file ? URL.createObjectURL(file) : "";
      area.hidden = !file;
      $("visual-submit").disabled = !file;
      clearCrop();
      clearObjects();
    });

    // The detected objects, drawn over the photo in displayed pixels (boxes are in the image's).
    function drawObjects() {
      boxes.replaceChildren();
      if (!preview.naturalWidth) return;
      const sx = preview.clientWidth / preview.naturalWidth;
      const sy = preview.clientHeight / preview.naturalHeight;
      objects.forEach((o, i) => {
        const [x, y, w, h] = o.box;
        const pct = Math.round(o.confidence * 100);
        const b = el(
          "button",
          { type: "button", class: "object-box", "data-index": i, title: `${o.category} (${pct}%)` },
          el("span", { class: "object-label" }, `${o.category} ${pct}%`),
        );
        Object.assign(b.style, { left: x * sx + "px", top: y * sy + "px", width: w * sx + "px", height: h * sy + "px" });
        b.addEventListener("pointerdown", (e) => e.stopPropagation()); // a click, not a crop
        b.addEventListener("click", () => showObject(i));
        boxes.append(b);
      });
    }
    let served = null;
    function showObject(i) {
      const o = objects[i];
      for (const b of boxes.children) b.classList.toggle("selected", Number(b.dataset.index) === i);
      row.replaceChildren(
        el("h2", { class: "module-title" }, `${o.category} in your photo`),
        o.items.length
          ? el("div", { class: "module-row" }, ...o.items.map((it, j) => pin(it, served, it.position ?? j + 1)))
          : el("p", { class: "hint" }, "No similar products found for this one."),
      );
      row.dataset.index = i;
      row.hidden = false;
    }
    new ResizeObserver(() => objects.length && drawObjects()).observe(preview);

    const point = (ev) => {
      const r = preview.getBoundingClientRect();
      return {
        x: Math.min(Math.max(ev.clientX - r.left, 0), r.width),
        y: Math.min(Math.max(ev.clientY - r.top, 0), r.height),
        r,
      };
    };
    area.addEventListener("pointerdown", (ev) => {
      if (!file) return;
      ev.preventDefault();
      area.setPointerCapture(ev.pointerId);
      start = point(ev);
    });
    area.addEventListener("pointermove", (ev) => {
      if (!start) return;
      const p = point(ev);
      const [x, y] = [Math.min(start.x, p.x), Math.min(start.y, p.y)];
      const [w, h] = [Math.abs(p.x - start.x), Math.abs(p.y - start.y)];
      Object.assign(box.style, { left: x + "px", top: y + "px", width: w + "px", height: h + "px" });
      box.hidden = false;
      // Displayed pixels -> the original image's pixels.
      const sx = preview.naturalWidth / p.r.width;
      const sy = preview.naturalHeight / p.r.height;
      crop = [Math.round(x * sx), Math.round(y * sy), Math.round(w * sx), Math.round(h * sy)];
    });
    const end = () => {
      if (!start) return;
      start = null;
      if (!crop || crop[2] < 4 || crop[3] < 4) clearCrop();
      else $("visual-clear").disabled = false;
    };
    area.addEventListener("pointerup", end);
    area.addEventListener("pointercancel", end);
    $("visual-clear").addEventListener("click", clearCrop);

    $("visual-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!file) return;
      const form = new FormData();
      form.append("image", file);
      form.append("k", "24");
      if (crop) form.append("crop", crop.join(","));
      const category = $("visual-category").value.trim();
      if (category) form.append("category", category);
      const text = $("visual-text").value.trim();
      if (text) form.append("text", text);
      const grid = $("grid");
      grid.setAttribute("aria-busy", "true");
      $("visual-submit").disabled = true;
      try {
        served = await api("/visual-search", { form });
        clearObjects();
        objects = served.objects || [];
        drawObjects();
        $("visual-grid-title").hidden = !objects.length;
        const cells = masonry(grid);
        cells.clear();
        served.items.forEach((it, i) => cells.add(pin(it, served, i + 1)));
        const found = objects.length ? ` Found ${objects.length} product${objects.length === 1 ? "" : "s"} in the photo: pick one.` : "";
        status(served.items.length ? found.trim() : "No similar products found.", false);
      } catch (e) {
        fail("Visual search")(e);
      } finally {
        grid.setAttribute("aria-busy", "false");
        $("visual-submit").disabled = false;
      }
    });
  }

  function boardCard(b) {
    const ids = b.item_ids || [];
    const cover = ids.length ? image("/images/" + enc(ids[0]), "") : el("div", { class: "noimg" });
    const count = `${ids.length} item${ids.length === 1 ? "" : "s"}`;
    return el(
      "a",
      { class: "board-card", href: "/b/" + enc(b.id), "data-id": b.id },
      cover,
      el("span", { class: "pin-title" }, b.title || b.id),
      el("span", { class: "pin-price" }, count),
    );
  }

  async function boardsPage() {
    $("new-board-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const b = await api("/boards", { json: { user_id: user, title: $("new-board-title").value.trim() } });
        location.href = "/b/" + enc(b.id);
      } catch (e) {
        fail("Creating the board")(e);
      }
    });
    try {
      const { boards } = await api(`/users/${enc(user)}/boards`);
      $("boards").replaceChildren(...boards.map(boardCard));
      $("empty").hidden = boards.length > 0;
    } catch (e) {
      fail("Loading your boards")(e);
    }
  }

  async function boardPage() {
    const id = app.dataset.boardId;
    feed($("grid"));
    const list = $("board-items");
    list.setAttribute("aria-busy", "true");
    try {
      const b = await api("/boards/" + enc(id));
      $("board-title").textContent = b.title || b.id;
      document.title = (b.title || b.id) + " · moodboard";
      // The board holds ids only: fetch each product (boards are small; show the first 100).
      const ids = (b.item_ids || []).slice(0, 100);
      const products = await Promise.all(ids.map((i) => api("/products/" + enc(i)).catch(() => null)));
      const shown = products.filter(Boolean);
      const cells = masonry(list);
      cells.clear();
      shown.forEach((p, i) => cells.add(pin(p, { surface: "board" }, i + 1)));
      $("empty").hidden = shown.length > 0;
    } catch (e) {
      $("board-title").textContent = e.status === 404 ? "Board not found" : "Error";
      if (e.status !== 404) fail("Loading the board")(e);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // ---- home: the shopper's feed as rows of modules, then the grid. In demo mode the visitor
  // may shop as one of the workspace's shoppers (remembered in this browser).
  const SHOP_AS = "moodboard.shopAs";

  function moduleRow(row, items, served) {
    // a sub-search row (a broad query's page) links its title to the whole sub-search
    const title = row.query
      ? el("a", { href: "/s?q=" + enc(row.query) + "&via=module", class: "module-link" }, row.title)
      : row.title;
    return el(
      "section",
      { class: "module", "data-kind": row.kind, "data-module-id": row.id, "data-propensity": row.propensity },
      el("h2", { class: "module-title" }, title),
      el("div", { class: "module-row" }, ...items.map((it) => pin(it, served, it.position))),
    );
  }

  // The served page's module rows go to #modules; the items outside them to the grid.
  function rowsFirst(served) {
    const rows = served.modules || [];
    for (const row of rows) $("modules").append(moduleRow(row, served.items.slice(row.start, row.end), served));
    if (rows.length) $("grid-title").hidden = false;
    const inRows = new Set(rows.flatMap((r) => served.items.slice(r.start, r.end).map((it) => it.id)));
    return served.items.filter((it) => !inRows.has(it.id));
  }


  async function homePage() {
    const demo = app.dataset.demo === "1";
    let shopper = user;
    if (demo) {
      try {
        shopper = localStorage.getItem(SHOP_AS) || user;
      } catch (e) { /* private mode: yourself */ }
      const select = $("shop-as-select");
      select.append(el("option", { value: user }, "Yourself"));
      try {
        const { shoppers } = await api("/demo/shoppers", { params: { k: 12 } });
        for (const s of shoppers) select.append(el("option", { value: s.id }, `${s.id} (${s.history} items)`));
      } catch (e) {
        fail("Loading the demo shoppers")(e);
      }
      if (![...select.options].some((o) => o.value === shopper)) shopper = user;
      select.value = shopper;
      $("shop-as").hidden = false;
      select.addEventListener("change", () => {
        try {
          localStorage.setItem(SHOP_AS, select.value);
        } catch (e) { /* ignore */ }
        location.reload();
      });
    }
    $("home-title").textContent = shopper === user ? "For you" : `For ${shopper}`;
    app.dataset.shopper = shopper;
    const session = Math.random().toString(36).slice(2, 12); // pages of this visit continue each other
    const grid = $("grid");
    feed(grid, { modules: 1, session }, {
      path: "/feed/" + enc(shopper),
      onPage: rowsFirst,
    });
  }

  // ---- search refinements (GET /refinements): chips under the query, each a link to the
  // search page of its refined query with its facet applied as a filter (`filter=facet:value`,
  // read back from this page's URL and passed to /search); related searches at the bottom.
  // `via`: how the shopper reached the search (chip, related, module, autocomplete): the search
  // page logs it with its `search` event, for the search analytics
  const searchLink = (q, filter = null, via = null) =>
    "/s?" + new URLSearchParams(compact({ q, filter: filter || null, via: via || null }));

  function appliedFilter() {
    const f = new URLSearchParams(location.search).get("filter");
    return f && f.includes(":") ? f : null;
  }

  async function refinementsOf(q, filter) {
    try {
      const r = await api("/refinements", { params: { q, filter } });
      const chips = r.chips.filter((c) => c.filter !== filter);
      $("chips").replaceChildren(...chips.map((c) => el(
        "a",
        { class: "chip", href: searchLink(c.query, c.filter, "chip"), "data-facet": c.facet, "data-filter": c.filter, title: c.query },
        c.label,
      )));
      $("chips").hidden = chips.length === 0;
      $("related-list").replaceChildren(...r.related_searches.map((s) => el(
        "li", {}, el("a", { href: searchLink(s.query, null, "related"), "data-source": s.source }, s.query),
      )));
      $("related-searches").hidden = r.related_searches.length === 0;
    } catch (e) {
      console.warn("no refinements", e); // the results stand without them
    }
  }

  function searchPage() {
    const q = $("grid").dataset.q;
    if (!q.trim()) return status("Type what you are looking for.", false);
    const filter = appliedFilter();
    if (filter) {
      const [facet, value] = [filter.slice(0, filter.indexOf(":")), filter.slice(filter.indexOf(":") + 1)];
      $("applied").replaceChildren(`${label(facet)}: ${value}`, el("a", { href: searchLink(q), id: "applied-clear" }, "clear"));
      $("applied").dataset.filter = filter;
      $("applied").hidden = false;
    }
    const via = new URLSearchParams(location.search).get("via");
    let logged = !["chip", "related", "module", "autocomplete"].includes(via);
    feed($("grid"), compact({ filter }), {
      onPage(served) {
        if (!logged) {
          logged = true; // the search, with how the shopper reached it
          postEvent({ type: "search", query: q, surface: "search", request_id: served.request_id, via });
        }
        return rowsFirst(served); // a broad query's rows first
      },
    });
    refinementsOf(q, filter);
  }
  // ---- end of search refinements ----

  const pages = {
    home: homePage,
    search: searchPage,
    product: productPage,
    visual: visualPage,
    boards: boardsPage,
    board: boardPage,
  };
  (pages[page] || (() => {}))();

  // ---- autocomplete: completions under the search box as the shopper types (GET
  // /autocomplete, debounced); ArrowDown/ArrowUp move, Enter searches the highlighted one,
  // Escape closes. A combobox with a listbox (aria-activedescendant names the highlighted).
  function autocompleteBox() {
    const input = $("search-q");
    const list = $("ac-list");
    if (!input || !list) return;
    let options = [];
    let active = -1;
    let timer = null;
    let asked = 0;
    function close() {
      list.hidden = true;
      list.replaceChildren();
      options = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    function pick(text) {
      input.value = text;
      close();
      location.href = "/s?q=" + enc(text) + "&via=autocomplete";
    }
    function highlight(i) {
      active = i;
      options.forEach((li, j) => li.setAttribute("aria-selected", j === i ? "true" : "false"));
      if (i >= 0) input.setAttribute("aria-activedescendant", options[i].id);
      else input.removeAttribute("aria-activedescendant");
    }
    function show(completions) {
      options = completions.map((c, i) => {
        const li = el("li", { id: `ac-option-${i}`, role: "option", "aria-selected": "false" }, c.text);
        li.addEventListener("mousedown", (ev) => {
          ev.preventDefault(); // keep the focus in the box
          pick(c.text);
        });
        return li;
      });
      list.replaceChildren(...options);
      active = -1;
      list.hidden = !options.length;
      input.setAttribute("aria-expanded", options.length ? "true" : "false");
    }
    async function ask() {
      const q = input.value;
      const mine = ++asked;
      if (!q.trim()) return close();
      try {
        const body = await api("/autocomplete", { params: { q: q.slice(0, 100), k: 8 } });
        if (mine === asked && input.value === q) show(body.completions);
      } catch (e) {
        close(); // completions are a help: a failure leaves the plain search box
      }
    }
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(ask, 120);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowDown" && options.length) {
        ev.preventDefault();
        highlight((active + 1) % options.length);
      } else if (ev.key === "ArrowUp" && options.length) {
        ev.preventDefault();
        highlight(active <= 0 ? options.length - 1 : active - 1);
      } else if (ev.key === "Enter" && active >= 0) {
        ev.preventDefault();
        pick(options[active].textContent);
      } else if (ev.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 150));
  }
  autocompleteBox();
  // ---- end of autocomplete
})();
