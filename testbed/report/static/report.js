/* Sorting, filtering and zoom for report.html (inlined by testbed/report/render.py); the
   page reads the same without it. `hot` rows are in the study's places. */
(function(){
function key(td){var s=td.getAttribute('data-sort');return s===null?td.textContent.trim():s;}
var NUM=/^-?[0-9]+([.][0-9]+)?$/;
function cmp(a,b){if(NUM.test(a)&&NUM.test(b))return parseFloat(a)-parseFloat(b);
 return a.localeCompare(b,undefined,{numeric:true});}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.classList.add('js');
 t.querySelectorAll('thead th').forEach(function(th,i){th.addEventListener('click',function(){
  var dir=th.getAttribute('data-dir')==='▲'?-1:1;
  t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('data-dir');});
  th.setAttribute('data-dir',dir>0?'▲':'▼');
  var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
  rows.sort(function(r1,r2){return dir*cmp(key(r1.cells[i]),key(r2.cells[i]));});
  rows.forEach(function(r){b.appendChild(r);});});});});
var f=document.querySelector('.filters'),q=document.getElementById('ep-filter'),
 hot=document.getElementById('ep-hot'),cnt=document.getElementById('ep-count'),
 tbl=document.getElementById('endpoint-table');
if(f&&tbl){f.hidden=false;var apply=function(){var s=q.value.toLowerCase(),n=0;
 Array.prototype.forEach.call(tbl.tBodies[0].rows,function(r){
  var ok=(!s||r.textContent.toLowerCase().indexOf(s)>=0)&&(!hot||!hot.checked||
   r.classList.contains('hot'));r.style.display=ok?'':'none';if(ok)n++;});
 cnt.textContent=n+' of '+tbl.tBodies[0].rows.length+' rows';};
 q.addEventListener('input',apply);if(hot)hot.addEventListener('change',apply);apply();}
var z=document.createElement('div');z.id='zoom';var zi=document.createElement('img');
z.appendChild(zi);document.body.appendChild(z);z.addEventListener('click',function(){
 z.classList.remove('on');});
document.querySelectorAll('td.shot img').forEach(function(img){img.addEventListener('click',
 function(){zi.src=img.src;zi.alt=img.alt;z.classList.add('on');});});
})();
