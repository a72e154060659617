/* Guichet web chat: adds the chat widget to a page in an iframe.
 * <script src="https://guichet.example.org/chat/widget.js" data-lang="fr" async></script>
 * The iframe goes into the element with id "guichet-chat" if there is one, otherwise at the
 * end of the page. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var base = new URL(script.src, location.href);
  var src = new URL("/chat/widget", base);
  var lang = script.getAttribute("data-lang");
  if (lang) { src.searchParams.set("lang", lang); }
  var frame = document.createElement("iframe");
  frame.src = src.toString();
  frame.title = lang === "en" ? "Chat with an advisor" : "Discuter avec un conseiller";
  frame.style.cssText = "width:100%;max-width:26rem;height:36rem;border:1px solid #ccc;border-radius:8px";
  function place() {
    (document.getElementById("guichet-chat") || document.body).appendChild(frame);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", place); } else { place(); }
})();
