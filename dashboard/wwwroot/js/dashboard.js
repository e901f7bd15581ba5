// DGON Console: client-side part of the live refresh.
// htmx polls the fragment endpoints; when the browser cannot reach this dashboard server at all
// (network error, timeout, or an error status from the dashboard itself) nothing would be swapped in,
// so this shows the page banner #dashboard-unreachable, and hides it again after the next good answer.
(function () {
  'use strict';

  function banner() {
    return document.getElementById('dashboard-unreachable');
  }

  function show(detail) {
    var element = banner();
    if (!element) {
      return;
    }
    var detailElement = element.querySelector('[data-role="detail"]');
    if (detailElement) {
      detailElement.textContent = detail;
    }
    element.hidden = false;
  }

  document.addEventListener('htmx:sendError', function () {
    show('The server did not answer.');
  });
  document.addEventListener('htmx:timeout', function () {
    show('The server took too long to answer.');
  });
  document.addEventListener('htmx:responseError', function (event) {
    show('The server answered HTTP ' + event.detail.xhr.status + '.');
  });
  document.addEventListener('htmx:afterRequest', function (event) {
    var element = banner();
    if (element && event.detail.successful) {
      element.hidden = true;
    }
  });
})();
