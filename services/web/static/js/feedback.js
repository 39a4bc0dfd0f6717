// The feedback form, made nicer: how many characters of the comment are left. The form works without it.
(function () {
  "use strict";
  var comment = document.getElementById("comment"), count = document.getElementById("comment-count");
  if (!comment || !count) return;
  var template = count.dataset.left;
  if (!template) return;
  function update() {
    count.textContent = template.replace("%(left)s", String(Math.max(0, comment.maxLength - comment.value.length)));
  }
  comment.addEventListener("input", update);
  update();
})();
