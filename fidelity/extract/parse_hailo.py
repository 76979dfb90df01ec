import re, os, json, sys
D='/tmp/zoos/h8'
def parse_file(fn):
    lines=open(os.path.join(D,fn)).read().split('\n')
    tables=[]; section=None; prev=None
    i=0
    while i<len(lines):
        l=lines[i]
        if re.match(r'^\^{3,}\s*$',l) and prev is not None and prev.strip():
            section=prev.strip()
        if l.strip().startswith('.. list-table::'):
            # collect table body
            j=i+1; rows=[]; cur=None; cell=None
            while j<len(lines):
                s=lines[j]
                if not s.strip():
                    j+=1
                    # table ends at first non-indented non-blank line
                    continue
                if not s.startswith('   '):
                    break
                m=re.match(r'^   \* -\s?(.*)$',s)
                m2=re.match(r'^     -\s?(.*)$',s)
                if m:
                    cur=[m.group(1).strip()]; rows.append(cur)
                elif m2 and cur is not None:
                    cur.append(m2.group(1).strip())
                elif s.strip().startswith(':'):
                    pass
                elif cur is not None:
                    cur[-1]=(cur[-1]+' '+s.strip()).strip()
                j+=1
            tables.append((section,rows,i+1))
            i=j; prev=None; continue
        prev=l; i+=1
    return tables
out=[]
for fn in sorted(os.listdir(D)):
    for section,rows,lineno in parse_file(fn):
        hdr=rows[0]
        for r in rows[1:]:
            out.append(dict(file=fn,section=section,line=lineno,hdr=hdr,cells=r))
json.dump(out,open('/tmp/zoos/hailo_raw.json','w'),indent=0)
print(len(out))
from collections import Counter
print(Counter((len(o['hdr']),len(o['cells'])) for o in out))
