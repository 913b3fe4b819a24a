"use strict";
// A searchable list under each time-zone box: what the server's zone_suggestions finds for
// the text typed, so "Asia/Seul" offers Asia/Seoul (the browser's own <datalist> only finds
// names containing the text). Arrow keys and Enter pick, Escape closes.
(function () {
  const DEBOUNCE_MS = 150;

  function setUp(input) {
    if (input.dataset.bjReady || input.name.includes("__prefix__")) {
      return;
    }
    input.dataset.bjReady = "1";
    input.removeAttribute("list"); // this list replaces the browser's
    const list = document.createElement("ul");
    list.className = "bj-zone-list";
    list.id = input.id + "-zones";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    const wrapper = document.createElement("span");
    wrapper.className = "bj-zone-picker";
    input.before(wrapper);
    wrapper.append(input, list);
    let timer = null;
    let asked = 0;
    let active = -1;

    function options() {
      return Array.from(list.children);
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      active = -1;
    }

    function highlight(index) {
      const items = options();
      active = Math.max(-1, Math.min(index, items.length - 1));
      items.forEach(function (item, i) { item.setAttribute("aria-selected", String(i === active)); });
      if (active >= 0) {
        items[active].scrollIntoView({block: "nearest"});
      }
    }

    function choose(name) {
      input.value = name;
      close();
      // The schedule's preview follows the zone: it listens for these.
      input.dispatchEvent(new Event("input", {bubbles: true}));
      input.dispatchEvent(new Event("change", {bubbles: true}));
    }

    async function suggest() {
      const mine = ++asked;
      let response;
      try {
        response = await fetch(input.dataset.suggestUrl + "?" + new URLSearchParams({q: input.value}), {
          credentials: "same-origin", headers: {"X-Requested-With": "fetch"},
        });
      } catch (error) {
        return; // the page is being left, or the network is down: the box still takes a name
      }
      if (mine !== asked || !response.ok || response.redirected) {
        return;
      }
      const zones = (await response.json()).zones;
      list.replaceChildren();
      zones.forEach(function (zone) {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.dataset.zone = zone.name;
        item.textContent = zone.name;
        const offset = item.appendChild(document.createElement("span"));
        offset.className = "quiet";
        offset.textContent = " UTC" + zone.offset;
        // mousedown, not click: the box's blur would close the list first.
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(zone.name);
        });
        list.appendChild(item);
      });
      // A zone's exact name needs no list (a box opened on its saved value stays quiet).
      const exact = zones.length > 0 && zones[0].name === input.value;
      list.hidden = !zones.length || exact || document.activeElement !== input;
      input.setAttribute("aria-expanded", String(!list.hidden));
      highlight(zones.length && !exact ? 0 : -1);
    }

    input.addEventListener("input", function (event) {
      if (!event.isTrusted) {
        return; // our own, after a choice
      }
      clearTimeout(timer);
      timer = setTimeout(suggest, DEBOUNCE_MS);
    });
    input.addEventListener("focus", function () { if (input.value) { suggest(); } });
    input.addEventListener("blur", close);
    input.addEventListener("keydown", function (event) {
      if (list.hidden) {
        return;
      }
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault(); // picks a zone, does not submit the form
        choose(options()[active].dataset.zone);
      } else if (event.key === "Escape") {
        close();
      }
    });
  }

  function setUpAll() {
    document.querySelectorAll("input.bj-zone-input").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", setUpAll);
  document.addEventListener("formset:added", setUpAll);
})();
