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

  // Confirmation of destructive POST forms (no inline script: the CSP allows scripts from this origin only).
  // A submit button or form with data-confirm="…" asks first; Cancel stops the POST.
  document.addEventListener('submit', function (event) {
    var source = event.submitter && event.submitter.getAttribute('data-confirm') ? event.submitter : event.target;
    var question = source && source.getAttribute ? source.getAttribute('data-confirm') : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  // Copy buttons: data-copy-target="<element id>" copies that element's text (a key, a token, the agent command).
  document.addEventListener('click', function (event) {
    var button = event.target.closest ? event.target.closest('[data-copy-target]') : null;
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute('data-copy-target'));
    if (!source) {
      return;
    }
    var text = source.textContent.trim();
    var done = function () {
      button.setAttribute('data-copied', 'true');
      button.textContent = 'Copied';
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try {
        if (document.execCommand('copy')) {
          done();
        }
      } catch (e) {
        // the text stays selected for a manual copy
      }
    }
  });

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
})();
