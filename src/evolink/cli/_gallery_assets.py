"""The gallery page's inline stylesheet and script (kept apart from the HTML they dress).

Both are inlined into `index.html`, so the page needs no server and no network. The script
only reads the page (statuses, prompt text) and toggles `hidden`: no prompt text ever passes
through it into markup.
"""

from __future__ import annotations

CSS = """
:root{--bg:#0f1115;--card:#181b22;--line:#262a33;--text:#e7e9ee;--muted:#9aa1ad;
--ok:#3ecf8e;--bad:#ff6b6b;--warn:#f5b94a;--off:#7c8593}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
background:var(--bg);color:var(--text)}
header{position:sticky;top:0;z-index:1;background:rgba(15,17,21,.95);backdrop-filter:blur(6px);
border-bottom:1px solid var(--line);padding:12px 20px}
h1{font-size:18px;margin:0 0 2px;overflow-wrap:anywhere}
.meta{color:var(--muted);font-size:13px}
.tools{margin-top:8px;display:flex;gap:8px 12px;flex-wrap:wrap;align-items:center}
.tools input{flex:0 1 320px;min-width:0;background:var(--card);color:var(--text);
border:1px solid var(--line);border-radius:8px;padding:5px 10px;font:inherit}
.filters{display:flex;gap:6px;flex-wrap:wrap}
.filters button{background:var(--card);color:var(--text);border:1px solid var(--line);
border-radius:999px;padding:3px 11px;cursor:pointer;font:inherit;font-size:12px}
.filters button[aria-pressed=true]{border-color:var(--text)}
main{padding:16px 20px;display:grid;gap:12px;
grid-template-columns:repeat(auto-fill,minmax(160px,1fr))}
.card{min-width:0;display:flex;flex-direction:column;background:var(--card);
border:1px solid var(--line);border-radius:10px;overflow:hidden}
.media{display:grid;grid-template-columns:1fr;gap:2px;background:#111}
.media.many{grid-template-columns:1fr 1fr}
.media>*{display:block;width:100%;aspect-ratio:1;min-width:0}
.media img,.media video{display:block;width:100%;height:100%;object-fit:cover;background:#222}
.media .audio{display:flex;align-items:center;padding:8px;background:#1d2129}
.media audio{width:100%}
.media .none{display:flex;align-items:center;justify-content:center;color:var(--muted);
font-style:italic}
.body{padding:8px 10px 10px;min-width:0}
.head{display:flex;justify-content:space-between;gap:6px;align-items:center}
.idx{color:var(--muted);font-variant-numeric:tabular-nums;font-size:12px;white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.prompt{margin:4px 0;overflow-wrap:anywhere;cursor:pointer;display:-webkit-box;
-webkit-box-orient:vertical;-webkit-line-clamp:3;overflow:hidden}
.prompt.open{display:block}
.badge{flex:none;border-radius:6px;padding:0 7px;font-size:11px;font-weight:600}
.completed{background:rgba(62,207,142,.15);color:var(--ok)}
.failed,.download_failed{background:rgba(255,107,107,.15);color:var(--bad)}
.rejected,.uncertain{background:rgba(245,185,74,.15);color:var(--warn)}
.skipped,.abandoned,.cancelled{background:rgba(124,133,147,.18);color:var(--off)}
.credits,.task{color:var(--muted);font-size:11px;overflow-wrap:anywhere}
.credits span{white-space:nowrap}
.error{margin-top:4px;color:var(--bad);font-size:12px;overflow-wrap:anywhere}
.nomatch{color:var(--muted);padding:0 20px}
@media (max-width:520px){header{position:static;padding:10px 12px}main{padding:10px 12px;gap:8px;
grid-template-columns:repeat(2,minmax(0,1fr))}.tools input{flex:1 1 100%}}
"""

# Filters by status and by every word typed (all must appear in the prompt); reads the prompt
# text once, since a 1,000-card page re-filters on each keystroke.
SCRIPT = """
(function(){
var cards=[].slice.call(document.querySelectorAll('main .card'));
var texts=cards.map(function(c){return c.querySelector('.prompt').textContent.toLowerCase()});
var search=document.getElementById('search'),shown=document.getElementById('shown');
var nomatch=document.getElementById('nomatch'),buttons=document.querySelectorAll('.filters button');
var status='all';
function apply(){
var words=search.value.toLowerCase().split(/\\s+/).filter(Boolean),count=0;
for(var i=0;i<cards.length;i++){
var keep=status==='all'||cards[i].dataset.status===status;
for(var w=0;keep&&w<words.length;w++){keep=texts[i].indexOf(words[w])>=0}
cards[i].hidden=!keep;if(keep){count++}}
shown.textContent=count+' shown';nomatch.hidden=count>0}
[].forEach.call(buttons,function(b){b.addEventListener('click',function(){
[].forEach.call(buttons,function(x){x.setAttribute('aria-pressed',String(x===b))});
status=b.dataset.status;apply()})});
search.addEventListener('input',apply);
document.querySelector('main').addEventListener('click',function(e){
var p=e.target.closest('.prompt');if(p){p.classList.toggle('open')}});
apply();
})();
"""
