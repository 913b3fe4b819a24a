// The job form fitted to its kind: only the fieldsets of the chosen kind are shown; a handler
// or batch job is picked from a list, with its description and a parameter form generated from
// its JSON Schema; HTTP headers are rows added and removed in place. The job's run page has the
// same parameter form, over the job's saved parameters.
//
// The parameter form is our own, for flat object schemas (string, integer, number, boolean,
// enum; required and defaults); a property of any other type is edited as JSON in its own box,
// and a schema without properties falls back to the JSON box of all parameters. Libraries tried
// first: django-jsonform 2.23 refuses two of the built-in handlers' schemas ("noop": an object
// without properties; "sql": an array without "items"), and sends null for every optional field
// left empty, which our schemas then refuse; @json-editor/json-editor is a 400 kB bundle for
// what these flat schemas need. The generated form only writes the JSON box (#id_params), which
// the server validates against the same schema whatever the browser did.
(function () {
  "use strict";

  // The job's form, or its run page (run_form), where the handler or batch job is the job's
  // own ("fixed") and its saved parameters are the defaults a run's go over.
  const form = document.getElementById("batchjob_form") || document.getElementById("run_form");
  const kind = document.getElementById("id_kind");
  const dataNode = document.getElementById("bj-job-form-data");
  if (!form || !dataNode) {
    return;
  }
  const catalogue = JSON.parse(dataNode.textContent);
  const text = catalogue.text;
  const fixed = catalogue.fixed || null;
  const defaults = catalogue.defaults || {};
  if (!kind && !fixed) {
    return; // a job shown read-only
  }

  function currentKind() {
    return kind ? kind.value : fixed.kind;
  }

  function format(message, values) {
    return message.replace(/%\((\w+)\)s/g, function (_, name) {
      return String(values[name]);
    });
  }

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([name, value]) {
      if (name === "text") {
        node.textContent = value;
      } else if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(name, value === true ? "" : value);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  // --- the fieldsets of the chosen kind ------------------------------------------------------

  function showFieldsetsOfKind() {
    document.querySelectorAll("fieldset[class*='kind-']").forEach(function (fieldset) {
      // No kind chosen yet (a new job): none of them applies.
      fieldset.hidden = !fieldset.classList.contains("kind-" + currentKind());
    });
  }

  // --- the parameter form --------------------------------------------------------------------

  const paramsBox = document.getElementById("id_params");
  const pickers = {
    handler: document.getElementById("id_handler_name"),
    batch: document.getElementById("id_batch_job_name"),
  };
  const panel = element("div", { id: "bj-param-form", class: "bj-param-form" });
  const description = element("p", { id: "bj-param-description", class: "bj-param-description" });
  let fields = []; // the generated inputs: {name, schema, input, error, json}

  function entryOfKind() {
    const picker = pickers[currentKind()];
    const name = picker ? picker.value : fixed && fixed.name;
    return (catalogue[currentKind()] || []).find(function (entry) {
      return entry.name === name;
    }) || null;
  }

  function storedParams() {
    try {
      const value = JSON.parse(paramsBox.value || "{}");
      return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (error) {
      return null;
    }
  }

  function isFlat(schema) {
    return schema && schema.type === "object" && schema.properties &&
      Object.keys(schema.properties).length > 0;
  }

  function takesNothing(schema) {
    return schema && schema.type === "object" && !isFlat(schema) &&
      schema.additionalProperties === false;
  }

  function scalarType(property) {
    if (Array.isArray(property.enum)) {
      return "enum";
    }
    return ["string", "integer", "number", "boolean"].includes(property.type) ? property.type : null;
  }

  function inputFor(name, property, value, required) {
    const id = "id_params__" + name;
    const type = scalarType(property);
    if (type === "enum" || type === "boolean") {
      const options = type === "enum" ? property.enum : [true, false];
      const select = element("select", { id: id });
      select.appendChild(element("option", { value: "", text: text.unset }));
      options.forEach(function (option) {
        const label = option === true ? text.yes : option === false ? text.no : String(option);
        select.appendChild(element("option", { value: JSON.stringify(option), text: label }));
      });
      select.value = value === undefined ? "" : JSON.stringify(value);
      return select;
    }
    if (type === "string") {
      const long = (property.maxLength || 0) > 200 || /statement|sql|query|body/.test(name);
      const input = element(long ? "textarea" : "input", {
        id: id, type: long ? null : "text", rows: long ? 3 : null, class: "vTextField",
      });
      input.value = value === undefined ? "" : String(value);
      return input;
    }
    if (type === "integer" || type === "number") {
      const input = element("input", {
        id: id, type: "text", inputmode: type === "integer" ? "numeric" : "decimal",
        class: "vIntegerField",
      });
      input.value = value === undefined ? "" : String(value);
      return input;
    }
    const box = element("textarea", { id: id, rows: 3, class: "vLargeTextField bj-param-json" });
    box.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    return box;
  }

  function helpFor(property, required) {
    const parts = [];
    if (property.description) {
      parts.push(property.description);
    }
    if (required) {
      parts.push(text.required);
    }
    if (property.default !== undefined) {
      parts.push(format(text["default"], { value: JSON.stringify(property["default"]) }));
    }
    if (!scalarType(property)) {
      parts.push(text.asJson);
    }
    return parts.join(" ");
  }

  function buildForm(schema, values) {
    panel.replaceChildren();
    fields = [];
    const required = schema.required || [];
    Object.entries(schema.properties).forEach(function ([name, property]) {
      const isRequired = required.includes(name) && !(name in defaults);
      const input = inputFor(name, property, values[name], isRequired);
      const error = element("ul", { class: "errorlist", hidden: true });
      const label = element("label", {
        for: input.id, class: isRequired ? "required" : null, text: name + ":",
      });
      const help = helpFor(name in defaults ? { ...property, default: defaults[name] } : property,
        isRequired);
      const row = element("div", { class: "form-row bj-param-row field-params__" + name }, [
        error,
        element("div", { class: "flex-container" }, [label, input]),
      ]);
      if (help) {
        row.appendChild(element("div", { class: "help", text: help }));
      }
      const field = { name: name, schema: property, required: isRequired, input: input, error: error };
      function changed() {
        writeParams();
        if (row.classList.contains("errors")) {
          checkField(field); // a problem shown goes as soon as it is put right
        }
      }
      input.addEventListener("input", changed);
      input.addEventListener("change", changed);
      panel.appendChild(row);
      fields.push(field);
    });
  }

  // A field's value, or undefined when left empty; `problem` set when it cannot be read.
  function readField(field) {
    const raw = field.input.value;
    if (raw.trim() === "") {
      return { value: undefined };
    }
    const type = scalarType(field.schema);
    if (type === "enum" || type === "boolean") {
      return { value: JSON.parse(raw) };
    }
    if (type === "string") {
      return { value: raw };
    }
    if (type === "integer" || type === "number") {
      const number = Number(raw.trim());
      if (!Number.isFinite(number)) {
        return { problem: text.enterNumber };
      }
      if (type === "integer" && !Number.isInteger(number)) {
        return { problem: text.enterInteger };
      }
      return { value: number };
    }
    try {
      return { value: JSON.parse(raw) };
    } catch (error) {
      return { problem: text.invalidJson };
    }
  }

  function problemOf(field, read) {
    if (read.problem) {
      return read.problem;
    }
    const value = read.value;
    const schema = field.schema;
    if (value === undefined) {
      return field.required ? text.required : null;
    }
    if (typeof value === "number") {
      if (schema.minimum !== undefined && value < schema.minimum) {
        return format(text.atLeast, { limit: schema.minimum });
      }
      if (schema.maximum !== undefined && value > schema.maximum) {
        return format(text.atMost, { limit: schema.maximum });
      }
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
        return format(text.moreThan, { limit: schema.exclusiveMinimum });
      }
      if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
        return format(text.lessThan, { limit: schema.exclusiveMaximum });
      }
    }
    if (typeof value === "string" && scalarType(schema) === "string") {
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        return format(text.minLength, { limit: schema.minLength });
      }
      if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        return format(text.maxLength, { limit: schema.maxLength });
      }
    }
    return null;
  }

  // The JSON box gets the generated form's values; keys the schema does not name are kept, so
  // that nothing typed before is lost unseen (the server names them if the schema refuses them).
  function writeParams() {
    const params = {};
    const known = new Set(fields.map(function (field) { return field.name; }));
    const before = storedParams() || {};
    Object.keys(before).forEach(function (key) {
      if (!known.has(key)) {
        params[key] = before[key];
      }
    });
    fields.forEach(function (field) {
      const read = readField(field);
      if (read.value !== undefined) {
        params[field.name] = read.value;
      } else if (read.problem && before[field.name] !== undefined) {
        params[field.name] = before[field.name];
      }
    });
    paramsBox.value = JSON.stringify(params, null, 2);
  }

  // Shows the field's problem (or clears it); true when it has one.
  function checkField(field) {
    const problem = problemOf(field, readField(field));
    field.error.replaceChildren();
    field.error.hidden = !problem;
    field.input.closest(".form-row").classList.toggle("errors", Boolean(problem));
    if (problem) {
      field.error.appendChild(element("li", { text: problem }));
    }
    return Boolean(problem);
  }

  // The first field with a problem, each one's shown; null when all are right.
  function validateParams() {
    return fields.filter(checkField).map(function (field) { return field.input; })[0] || null;
  }

  let shownEntry;

  function showParameterForm() {
    const entry = entryOfKind();
    const paramsRow = paramsBox && paramsBox.closest(".form-row");
    if (!paramsRow || entry === shownEntry) {
      return;
    }
    const previous = shownEntry;
    shownEntry = entry;
    const picker = pickers[currentKind()];
    if (picker) {
      picker.closest(".form-row").appendChild(description);
    }
    description.textContent = entry ? entry.description : "";
    description.hidden = !entry || !entry.description;
    if (!panel.isConnected) {
      paramsRow.after(panel);
    }
    let values = storedParams();
    if (previous && values) {
      // Another handler: keep only what the new one also takes.
      const names = new Set(Object.keys((entry && entry.schema.properties) || {}));
      values = Object.fromEntries(Object.entries(values).filter(function ([name]) {
        return names.has(name);
      }));
      paramsBox.value = JSON.stringify(values, null, 2);
    }
    const schema = entry && entry.schema;
    fields = [];
    panel.replaceChildren();
    if (schema && values && takesNothing(schema) && Object.keys(values).length === 0) {
      panel.appendChild(element("p", { class: "help", text: text.noParameters }));
      showJsonBox(paramsRow, false);
    } else if (schema && values && isFlat(schema)) {
      buildForm(schema, values);
      // Stored keys the schema does not name stay editable in the JSON box, shown beside.
      showJsonBox(paramsRow, Object.keys(values).some(function (name) {
        return !(name in schema.properties);
      }));
      if (!previous) {
        showServerErrorsAtFields(paramsRow);
      }
    } else {
      showJsonBox(paramsRow, true); // any other schema, or a box that is not a JSON object
    }
  }

  // The server's errors on the parameters ("days: 0 is less than the minimum of 1", "'file' is
  // a required property") shown at the field they name as well.
  function showServerErrorsAtFields(paramsRow) {
    paramsRow.querySelectorAll(".errorlist li").forEach(function (item) {
      const message = item.textContent;
      const named = /^([^.:\s]+): /.exec(message) || /^'([^']+)' is a required property/.exec(message);
      const field = named && fields.find(function (each) { return each.name === named[1]; });
      if (field) {
        field.error.appendChild(element("li", { text: message }));
        field.error.hidden = false;
        field.input.closest(".form-row").classList.add("errors");
      }
    });
  }

  // The JSON box hidden behind a generated form; the server's errors on it stay in sight.
  function showJsonBox(paramsRow, shown) {
    paramsRow.hidden = !shown && !paramsRow.classList.contains("errors");
    paramsRow.querySelectorAll(".flex-container, .help").forEach(function (node) {
      node.hidden = !shown;
    });
  }

  // --- header rows ---------------------------------------------------------------------------

  function setUpHeaderRows(container) {
    const name = container.dataset.name;
    const count = container.querySelector("input[name='" + name + "-rows']");
    const template = container.querySelector("template.bj-header-template");
    const add = container.querySelector(".bj-header-add");

    function secretToggled(row) {
      const secret = row.querySelector(".bj-header-secret input");
      const value = row.querySelector(".bj-header-value");
      secret.addEventListener("change", function () {
        value.type = secret.checked ? "password" : "text";
      });
    }

    container.querySelectorAll(".bj-header-row:not(.bj-header-titles)").forEach(secretToggled);
    container.addEventListener("click", function (event) {
      const remove = event.target.closest(".bj-header-remove");
      if (remove) {
        remove.closest(".bj-header-row").remove();
      }
    });
    add.addEventListener("click", function () {
      const index = Number(count.value);
      const html = template.innerHTML.replaceAll("__index__", String(index));
      add.insertAdjacentHTML("beforebegin", html);
      count.value = String(index + 1);
      const row = add.previousElementSibling;
      secretToggled(row);
      row.querySelector(".bj-header-name").focus();
    });
  }

  // --- wiring --------------------------------------------------------------------------------

  function kindChanged() {
    showFieldsetsOfKind();
    if (paramsBox) {
      showParameterForm();
    }
  }

  if (kind) {
    kind.addEventListener("change", kindChanged);
  }
  Object.values(pickers).forEach(function (picker) {
    if (picker) {
      picker.addEventListener("change", kindChanged);
    }
  });
  document.querySelectorAll(".bj-header-rows").forEach(setUpHeaderRows);
  form.addEventListener("submit", function (event) {
    if (!fields.length || !entryOfKind()) {
      return;
    }
    writeParams();
    const first = validateParams();
    if (first) {
      event.preventDefault();
      first.focus();
    }
  });
  kindChanged();
})();
