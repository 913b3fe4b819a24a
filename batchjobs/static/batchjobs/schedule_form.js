"use strict";
// Schedule forms (the schedule page, and each schedule row of the job form): only the fields
// of the chosen kind show, and a live preview of the next fires follows what is typed. The
// kind box carries what is needed: the fields of each kind, the fields the preview reads and
// the preview's address (batchjobs/admin/forms.py, ScheduleTimesForm).
(function () {
  const DEBOUNCE_MS = 250;

  function fieldNames(row) {
    return Array.from(row.classList)
      .filter(function (name) { return name.startsWith("field-"); })
      .map(function (name) { return name.slice("field-".length); });
  }

  function setUp(kind) {
    if (kind.dataset.bjReady || kind.name.includes("__prefix__")) {
      return; // set up already, or the formset's hidden template row
    }
    kind.dataset.bjReady = "1";
    const prefix = kind.name.slice(0, -"kind".length);
    const scope = kind.closest(".inline-related") || kind.form;
    const kindFields = JSON.parse(kind.dataset.kindFields);
    const previewFields = new Set(JSON.parse(kind.dataset.previewFields));
    const everyKindField = new Set(Object.values(kindFields).flat());
    const rows = Array.from(scope.querySelectorAll(".form-row")).filter(function (row) {
      const names = fieldNames(row);
      return names.length && names.every(function (name) { return everyKindField.has(name); });
    });
    const box = document.createElement("div");
    box.className = "bj-schedule-preview help";
    box.setAttribute("aria-live", "polite");
    if (!prefix) {
      box.id = "schedule-preview"; // the schedule page has one
    }
    const lastRow = rows[rows.length - 1] || kind.closest(".form-row");
    lastRow.after(box);
    let timer = null;
    let asked = 0;

    function showKindFields() {
      const shown = new Set(kindFields[kind.value] || []);
      rows.forEach(function (row) {
        row.hidden = !fieldNames(row).some(function (name) { return shown.has(name); });
      });
    }

    function paragraph(text, className) {
      const note = document.createElement("p");
      note.textContent = text;
      if (className) {
        note.className = className;
      }
      return note;
    }

    function show(data) {
      box.replaceChildren();
      const errors = Object.values(data.errors || {}).flat();
      if (errors.length) {
        errors.forEach(function (error) { box.appendChild(paragraph(error, "errornote")); });
        return;
      }
      const words = paragraph("");
      words.appendChild(document.createElement("strong")).textContent = data.description || "";
      box.appendChild(words);
      if (!data.fires.length) {
        box.appendChild(paragraph(data.empty_text));
        return;
      }
      const list = document.createElement("ol");
      list.className = "bj-preview-fires";
      if (!prefix) {
        list.id = "schedule-preview-fires";
      }
      data.fires.forEach(function (fire) {
        const item = document.createElement("li");
        // The operator's own reading beside the schedule's, where the two differ.
        item.textContent = fire.local + (fire.yours !== fire.local ? " (" + fire.yours + ")" : "")
          + " · " + fire.relative
          + (fire.dst_change ? " — " + data.dst_change_text : "")
          + (fire.excluded ? " — " + fire.excluded : "");
        list.appendChild(item);
      });
      box.appendChild(list);
    }

    function query() {
      const values = new URLSearchParams();
      // [name^=''] would match nothing: the schedule page's fields have no prefix.
      scope.querySelectorAll(prefix ? "[name^='" + prefix + "']" : "[name]").forEach(function (input) {
        const name = input.name.slice(prefix.length);
        if (previewFields.has(name.replace(/_[01]$/, ""))) {
          values.set(name, input.value);
        }
      });
      if (kind.dataset.schedule) {
        values.set("schedule", kind.dataset.schedule);
      }
      return values;
    }

    async function refresh() {
      if (!kind.value) {
        box.replaceChildren();
        return;
      }
      const mine = ++asked;
      let response;
      try {
        response = await fetch(kind.dataset.previewUrl + "?" + query(), {
          credentials: "same-origin", headers: {"X-Requested-With": "fetch"},
        });
      } catch (error) {
        return; // the page is being left, or the network is down: the preview waits
      }
      // Only the latest answer is shown: an earlier one may arrive after it.
      if (mine === asked && !response.redirected && response.headers.get("content-type") === "application/json") {
        show(await response.json());
      }
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, DEBOUNCE_MS);
    }

    kind.addEventListener("change", showKindFields);
    scope.addEventListener("input", later);
    scope.addEventListener("change", later);
    showKindFields();
    refresh();
  }

  function setUpAll() {
    document.querySelectorAll("select.bj-schedule-kind").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", setUpAll);
  // A schedule row added by the formset's "Add another" link.
  document.addEventListener("formset:added", setUpAll);
})();
