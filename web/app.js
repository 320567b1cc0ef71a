// policyqa page. Everything that comes from documents is inserted as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Append `text` to `parent`, wrapping each occurrence of the matched terms in <mark class="term">.
function appendWithTerms(parent, text, terms) {
  const wanted = terms.filter((t) => t && t.length > 1).sort((a, b) => b.length - a.length);
  const lower = text.toLowerCase();
  let i = 0, plain = "";
  while (i < text.length) {
    const term = wanted.find((t) => lower.startsWith(t.toLowerCase(), i));
    if (term) {
      if (plain) { parent.appendChild(document.createTextNode(plain)); plain = ""; }
      parent.appendChild(el("mark", "term", text.slice(i, i + term.length)));
      i += term.length;
    } else {
      plain += text[i];
      i += 1;
    }
  }
  if (plain) parent.appendChild(document.createTextNode(plain));
}

function renderPassage(hit) {
  const p = el("p", "passage");
  const text = hit.text;
  const a = Math.max(0, Math.min(hit.answer_start || 0, text.length));
  const b = Math.max(a, Math.min(hit.answer_end || 0, text.length));
  const terms = hit.matched_terms || [];
  appendWithTerms(p, text.slice(0, a), terms);
  if (b > a) {
    const answer = el("mark", "answer");
    appendWithTerms(answer, text.slice(a, b), terms);
    p.appendChild(answer);
  }
  appendWithTerms(p, text.slice(b), terms);
  return p;
}

function renderHit(hit) {
  const li = el("li", "result");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "rank", "#" + hit.rank));
  meta.appendChild(el("span", "score", "得分 " + Number(hit.score).toFixed(4)));
  meta.appendChild(el("span", "source", "来源：" + hit.source));
  if (hit.section) meta.appendChild(el("span", "section", "章节：" + hit.section));
  li.appendChild(meta);
  li.appendChild(renderPassage(hit));
  return li;
}

async function runSearch(q, k) {
  const status = $("status"), list = $("results");
  status.className = "";
  status.textContent = "搜索中…";
  list.replaceChildren();
  try {
    const resp = await fetch("/api/search?" + new URLSearchParams({ q, k }));
    const data = await resp.json();
    if (!resp.ok) {
      status.className = "warn";
      status.textContent = data.error || ("出错了（" + resp.status + "）");
      return;
    }
    if (data.confident === false) {
      status.className = "warn";
      const missing = (data.confidence && data.confidence.missing) || [];
      status.textContent = "未找到可靠答案" +
        (missing.length ? "（文档中没有出现：" + missing.join("、") + "）" : "") +
        "，以下是最接近的段落：";
    } else {
      status.textContent = data.results.length
        ? "找到 " + data.results.length + " 条结果（" + data.took_ms + " 毫秒）"
        : "没有找到相关段落。";
    }
    for (const hit of data.results) list.appendChild(renderHit(hit));
  } catch (err) {
    status.className = "warn";
    status.textContent = "无法连接服务：" + err;
  }
}

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  history.replaceState(null, "", "?q=" + encodeURIComponent(q));
  runSearch(q, $("k").value);
});

for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => {
    $("q").value = button.textContent;
    $("search-form").requestSubmit();
  });
}

fetch("/api/health").then((r) => r.json()).then((h) => {
  if (h.status === "ok") $("footer").textContent = "已索引 " + h.documents + " 份文件、" + h.chunks + " 个段落 · 模型 " + h.model;
}).catch(() => {});

const initial = new URLSearchParams(location.search).get("q");
if (initial) { $("q").value = initial; runSearch(initial, $("k").value); }

// --- admin panel ------------------------------------------------------------------------------

const TOKEN_KEY = "policyqa-admin-token";

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function adminMessage(text, warn) {
  const m = $("admin-message");
  m.className = warn ? "warn" : "";
  m.textContent = text;
}

function authHeaders() {
  return token() ? { Authorization: "Bearer " + token() } : {};
}

function humanSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

async function loadDocuments() {
  const body = $("documents").querySelector("tbody");
  try {
    const resp = await fetch("/api/documents");
    const data = await resp.json();
    if (!resp.ok) { adminMessage(data.error || "无法读取文档列表", true); return; }
    body.replaceChildren();
    for (const doc of data.documents) {
      const tr = el("tr");
      tr.dataset.docId = doc.doc_id;
      tr.appendChild(el("td", "doc-source", doc.source));
      tr.appendChild(el("td", "", doc.title));
      tr.appendChild(el("td", "num", String(doc.chunks)));
      tr.appendChild(el("td", "num", humanSize(doc.size)));
      tr.appendChild(el("td", "", doc.indexed_at.replace("T", " ").replace("Z", " UTC")));
      const cell = el("td");
      const del = el("button", "delete", "删除");
      del.type = "button";
      del.addEventListener("click", () => removeDocument(doc));
      cell.appendChild(del);
      tr.appendChild(cell);
      body.appendChild(tr);
    }
  } catch (err) {
    adminMessage("无法连接服务：" + err, true);
  }
}

function describeJob(job) {
  if (!job) return "索引空闲";
  const names = { queued: "排队中", running: "进行中", done: "已完成", failed: "失败", cancelled: "已取消" };
  let text = "索引任务 " + (names[job.state] || job.state);
  if (job.total) text += "（" + job.done + "/" + job.total + " 段落已向量化）";
  if (job.error) text += "：" + job.error;
  return text;
}

async function watchJob(jobId) {
  for (;;) {
    const resp = await fetch("/api/index/jobs/" + encodeURIComponent(jobId));
    const job = await resp.json();
    if (!resp.ok) { adminMessage(job.error || "无法读取任务状态", true); return null; }
    $("index-status").textContent = describeJob(job);
    if (job.state === "done" || job.state === "failed" || job.state === "cancelled") {
      await loadDocuments();
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function showStatus() {
  try {
    const resp = await fetch("/api/index/status");
    const data = await resp.json();
    if (resp.ok) $("index-status").textContent = describeJob(data.job) + (data.last_error ? "（上次错误：" + data.last_error + "）" : "");
  } catch (err) { /* the search part still works */ }
}

function upload(file) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const bar = $("upload-progress");
    xhr.open("POST", "/api/documents");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) { bar.hidden = false; bar.value = Math.round(100 * ev.loaded / ev.total); }
    };
    xhr.onload = () => {
      bar.hidden = true;
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = { error: xhr.responseText }; }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data });
    };
    xhr.onerror = () => { bar.hidden = true; resolve({ ok: false, status: 0, data: { error: "网络错误" } }); };
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  adminMessage(token() ? "令牌已保存在本标签页中。" : "令牌已清除。");
});

$("token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  adminMessage("令牌已清除。");
});

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) { adminMessage("请先选择文件。", true); return; }
  adminMessage("正在上传 " + file.name + " …");
  const result = await upload(file);
  if (!result.ok) { adminMessage("上传失败（" + result.status + "）：" + (result.data.error || ""), true); return; }
  adminMessage("已上传 " + result.data.source + "，正在建立索引…");
  const job = await watchJob(result.data.job.id);
  if (job && job.state === "done") adminMessage(result.data.source + " 已可检索。");
  else if (job) adminMessage("索引失败：" + job.error, true);
  $("upload-form").reset();
});

async function removeDocument(doc) {
  if (!confirm("删除 " + doc.source + "？")) return;
  const resp = await fetch("/api/documents/" + encodeURIComponent(doc.doc_id), { method: "DELETE", headers: authHeaders() });
  const data = await resp.json();
  if (!resp.ok) { adminMessage("删除失败（" + resp.status + "）：" + (data.error || ""), true); return; }
  adminMessage("已删除 " + data.source + "。");
  await watchJob(data.job.id);
}

$("rebuild").addEventListener("click", async () => {
  const resp = await fetch("/api/index/rebuild", { method: "POST", headers: authHeaders() });
  const data = await resp.json();
  if (!resp.ok) { adminMessage("重建失败（" + resp.status + "）：" + (data.error || ""), true); return; }
  adminMessage("已开始重建索引。");
  const job = await watchJob(data.job.id);
  if (job) adminMessage(describeJob(job), job.state === "failed");
});

$("admin").addEventListener("toggle", () => {
  if ($("admin").open) { loadDocuments(); showStatus(); }
});
