/* Stekker console: the real map on the stations list (Leaflet with clustered markers).

   The page always holds a drawing of the locations (inline SVG) and a hidden box for this
   map. This script shows the map only when everything it needs is there: Leaflet and its
   clustering plug-in loaded, the stations fetched, and the first tile arrived from the tile
   server. Until then the drawing stays, and if three tiles fail before one arrives (no
   internet, a blocked host) or none arrives in TILE_WAIT_MS, the map is removed and the
   drawing stays with a notice. The section's data-map-state says which: fallback, loading, live or failed.

   Every text from the server (station ids, place names, the statuses in words) goes into the
   page as text (textContent), never as HTML. No build step: plain ES5, served as is. */
(function () {
  "use strict";
  var TILE_WAIT_MS = 15000;
  var REFRESH_MS = 2000; // a burst of status changes fetches the stations once
  var box = document.getElementById("map-live");
  if (!box || !window.L || !window.L.MarkerClusterGroup || !window.fetch || !window.JSON) {
    return;
  }
  var section = box.parentNode.parentNode;
  var texts = JSON.parse(box.getAttribute("data-texts"));
  var kindOf = {};
  var urgency = {};
  texts.urgency.forEach(function (pair, rank) {
    kindOf[pair[0]] = pair[1];
    urgency[pair[0]] = rank;
  });

  function setState(state) {
    section.setAttribute("data-map-state", state);
  }

  function word(text) {
    // class names come from the server's enums; anything else is not a class
    return /^[A-Za-z]+$/.test(text) ? text.toLowerCase() : "unknown";
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return "&#" + c.charCodeAt(0) + ";";
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function popupOf(station) {
    var content = element("div", "map-popup");
    content.appendChild(element("strong", "map-popup-id", station.id));
    content.appendChild(element("span", "badge " + word(station.kind), station.label));
    content.appendChild(element("span", "map-popup-place", station.place));
    var link = element("a", "map-popup-link", texts.open);
    link.href = /^\/console\/stations\//.test(station.url) ? station.url : "#";
    content.appendChild(link);
    return content;
  }

  function markerOf(station) {
    var name = fill(texts.station, { id: station.id, status: station.label });
    var marker = L.marker([station.lat, station.lon], {
      icon: L.divIcon({
        className: "map-marker kind-" + word(station.kind) + " status-" + word(station.status),
        iconSize: [22, 22],
      }),
      title: name,
      keyboard: true,
      riseOnHover: true,
    });
    marker.stekkerStatus = station.status;
    marker.on("add", function () {
      var icon = marker.getElement();
      if (icon) {
        icon.setAttribute("aria-label", name);
        icon.setAttribute("data-station", station.id);
      }
    });
    marker.bindPopup(function () {
      return popupOf(station);
    });
    return marker;
  }

  function clusterIcon(cluster) {
    var worst = null;
    cluster.getAllChildMarkers().forEach(function (marker) {
      var status = marker.stekkerStatus;
      if (worst === null || urgency[status] < urgency[worst]) {
        worst = status;
      }
    });
    var count = cluster.getChildCount();
    return L.divIcon({
      className: "map-cluster kind-" + word(kindOf[worst] || "off") + " status-" + word(worst || "Unknown"),
      html: "<span>" + Number(count) + "</span>",
      iconSize: [40, 40],
    });
  }

  function showTruncated(body) {
    var notice = document.getElementById("map-live-truncated");
    if (notice) {
      notice.hidden = !body.truncated;
      notice.textContent = body.truncated ? fill(texts.truncated, { count: body.stations.length }) : "";
    }
  }

  function load() {
    return fetch(box.getAttribute("data-stations"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("stations: HTTP " + response.status);
      }
      return response.json();
    });
  }

  function start(body) {
    if (!body.stations.length) {
      return; // nothing to place: the drawing says so
    }
    box.hidden = false;
    setState("loading");
    var map = L.map(box, { zoomControl: false, attributionControl: false, maxZoom: 19 });
    L.control.zoom({ zoomInTitle: texts.zoom_in, zoomOutTitle: texts.zoom_out }).addTo(map);
    L.control
      .attribution({ prefix: '<a href="https://leafletjs.com">Leaflet</a>' })
      .addAttribution(escapeHtml(box.getAttribute("data-attribution")))
      .addTo(map);
    var groups = L.markerClusterGroup({
      iconCreateFunction: clusterIcon,
      clusterLabel: function (cluster) {
        return fill(texts.cluster, { count: cluster.getChildCount() });
      },
      showCoverageOnHover: false,
      maxClusterRadius: 60,
    });
    var shown = false;
    var failed = false;
    var timer = null;

    function fail() {
      if (shown || failed) {
        return;
      }
      failed = true;
      window.clearTimeout(timer);
      map.remove();
      box.hidden = true;
      setState("failed");
    }

    function place(stations) {
      groups.clearLayers();
      groups.addLayers(stations.map(markerOf));
    }

    map.on("popupopen", function (event) {
      // Leaflet names its close button in English
      var close = event.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) {
        close.setAttribute("aria-label", texts.close);
        close.setAttribute("title", texts.close);
      }
    });
    place(body.stations);
    showTruncated(body);
    map.addLayer(groups);
    map.fitBounds(groups.getBounds(), { padding: [24, 24], maxZoom: 16 });
    var tiles = L.tileLayer(box.getAttribute("data-tiles"), { maxZoom: 19 });
    tiles.on("tileload", function () {
      if (shown || failed) {
        return;
      }
      shown = true;
      window.clearTimeout(timer);
      setState("live");
      map.invalidateSize();
      map.fitBounds(groups.getBounds(), { padding: [24, 24], maxZoom: 16 });
    });
    var errors = 0;
    tiles.on("tileerror", function () {
      // one missing tile is the server's business; several and none arrived: unreachable
      errors += 1;
      if (errors >= 3) {
        fail();
      }
    });
    timer = window.setTimeout(fail, TILE_WAIT_MS);
    tiles.addTo(map);

    // live: a station's status changed somewhere (live.js re-announces the server's events)
    var pending = null;
    document.body.addEventListener("stekker:station", function () {
      if (failed || pending !== null) {
        return;
      }
      pending = window.setTimeout(function () {
        pending = null;
        load().then(function (fresh) {
          if (!failed) {
            place(fresh.stations);
            showTruncated(fresh);
          }
        }, function () {});
      }, REFRESH_MS);
    });
  }

  load()
    .then(start)
    ["catch"](function () {
      // no stations (the server said no) or Leaflet broke: the drawing stays
      box.hidden = true;
      setState("failed");
    });
})();
