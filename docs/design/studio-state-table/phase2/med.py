import statistics, sys
f, dbs = sys.argv[1], sys.argv[2].split(",")
lines=open(f).read().splitlines()[1:]
qs=['grid100','fo_casc','session','stats']
cols=[(n,d) for n in qs for d in dbs]; vals={c:[] for c in cols}
for l in lines:
    for c,x in zip(cols,l.split()[1:1+len(cols)]):
        ms,r=x.split('/'); vals[c].append((float(ms),int(r)))
print(f"{f}: medians over {len(lines)} loops (ms; max rows read; ratio original/variant)")
for n in qs:
    p=statistics.median(v[0] for v in vals[(n,dbs[-1])])
    print(f"  {n:8} " + " | ".join(f"{d} {statistics.median(v[0] for v in vals[(n,d)]):.0f} ms {max(v[1] for v in vals[(n,d)]):,} rows {p/statistics.median(v[0] for v in vals[(n,d)]):.1f}x" for d in dbs))
