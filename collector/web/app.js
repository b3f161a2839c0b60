// hopwatch's web page: routes on location.pathname.
"use strict";
document.getElementById("app").textContent = "hopwatch";
