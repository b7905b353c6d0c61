/* Stekker console: a table too wide for a phone becomes cards. Each data cell gets its
   column's name (data-label, from the table's header row); a table that does not fit its box
   gets data-cards, and console.css then shows one card per row with the name before each
   value. Narrow tables stay tables, wide screens keep every table, with whole words where
   they fit (data-natural). A table without a single
   header row is left alone (on a phone it scrolls in its own box), and so is everything when
   this script does not run. Tables htmx swaps in (live updates) are handled after each swap,
   and all of them again when the window changes size. Plain ES5, served as is. */
(function () {
  "use strict";
  var each = Array.prototype.forEach;
  var phone = window.matchMedia("(max-width: 47.99rem)"); // as console.css

  function text(cell) {
    return cell.textContent.replace(/\s+/g, " ").trim();
  }

  function label(table) {
    if (table.hasAttribute("data-labelled")) {
      return true;
    }
    var head = table.tHead;
    if (!head || head.rows.length !== 1 || !table.tBodies.length) {
      return false;
    }
    var names = [];
    each.call(head.rows[0].cells, function (cell) {
      for (var i = 0; i < (cell.colSpan || 1); i++) {
        names.push(text(cell));
      }
    });
    each.call(table.tBodies, function (body) {
      each.call(body.rows, function (row) {
        var column = 0;
        each.call(row.cells, function (cell) {
          if (names[column] && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", names[column]);
          }
          if (!text(cell) && !cell.querySelector("a, button, input, select, textarea, img, svg")) {
            cell.setAttribute("data-empty", "");
          }
          column += cell.colSpan || 1;
        });
      });
    });
    table.setAttribute("data-labelled", "");
    return true;
  }

  function overflows(table) {
    // a phone's table is its own scroll box (console.css); elsewhere it can outgrow its parent
    return table.scrollWidth > table.clientWidth + 1 || table.offsetWidth > table.parentNode.clientWidth + 1;
  }

  function fit(table) {
    // first as a table with whole words; if that is too wide: cards on a phone, else words
    // may break anywhere (the stylesheet's default, which always fits)
    table.removeAttribute("data-cards");
    table.setAttribute("data-natural", "");
    if (!overflows(table)) {
      return;
    }
    if (phone.matches && label(table)) {
      table.setAttribute("data-cards", "");
      return;
    }
    table.removeAttribute("data-natural");
  }

  function fitAll() {
    each.call(document.querySelectorAll("main table"), fit);
  }

  var pending = null;
  fitAll();
  document.body.addEventListener("htmx:afterSettle", fitAll);
  window.addEventListener("resize", function () {
    window.clearTimeout(pending);
    pending = window.setTimeout(fitAll, 150);
  });
})();
