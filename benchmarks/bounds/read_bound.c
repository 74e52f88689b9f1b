// The least mean delay + price x reads of a read schedule for one task, the distribution
// known: T ~ U(2,6) on a grid, E = round(T(1+u)), u ~ U(-.15,.15); a read at s shows done
// (T < s) or the stage floor(STEPS s / T). Usage: read_bound GRID STEPS ERROR PRICE ESTIMATE.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
static double DT; static int N; // grid: T_j = (j+.5)*DT, j in [J0,J1)
static int STEPS;
static double *W, *PW, *PWJ; // prefix sums over j of w, w*j
static float *V; static short *A; static double *R, *D; static int S0, S;
#define IDX(t,lo,hi) (((size_t)(t)*(S+1)+(lo-S0))*(S+1)+(hi-S0))
static double wsum(int a,int b){ if(b<=a) return 0; return PW[b]-PW[a]; }
static double wjsum(int a,int b){ if(b<=a) return 0; return PWJ[b]-PWJ[a]; }
// stage of j at read s: floor(STEPS*s/(j+.5)) for j>=s.  j in stage k iff STEPS*s/(k+1) < j+.5 <= STEPS*s/k
// => j+.5 > STEPS*s/(k+1)  <=> j >= floor(STEPS*s/(k+1) - .5)+1 ... compute via loop-safe function
static int first_j_above(double x){ // smallest j with j+.5 > x
  int j = (int)floor(x - 0.5) + 1; if (j < 0) j = 0; while (j+0.5 <= x) j++; while (j>0 && (j-1)+0.5 > x) j--; return j; }
int main(int argc,char**argv){
  DT = atof(argv[1]); STEPS = atoi(argv[2]); double err = atof(argv[3]);
  double lam = atof(argv[4]); int E = atoi(argv[5]);
  double tlo=2, thi=6;
  int J0=(int)llround(tlo/DT), J1=(int)llround(thi/DT);
  N=J1+1;
  W=calloc(N+1,sizeof(double)); PW=calloc(N+2,sizeof(double)); PWJ=calloc(N+2,sizeof(double));
  for(int j=J0;j<J1;j++){ double T=(j+.5)*DT; double a=fmax((E-.5)/T,1-err), b=fmin((E+.5)/T,1+err); W[j]= b>a ? (b-a)/(2*err) : 0; }
  // narrow support
  int s0=J1, s1=J0; for(int j=J0;j<J1;j++) if(W[j]>0){ if(j<s0) s0=j; s1=j+1; }
  if(s1<=s0){ printf("E=%d pE=0\n",E); return 0; }
  double pE=0; for(int j=J0;j<J1;j++) pE+=W[j]*DT/(thi-tlo);
  for(int j=0;j<=N;j++){ PW[j+1]=PW[j]+W[j]; PWJ[j+1]=PWJ[j]+W[j]*(j+.5); }
  S0=s0; S=s1-s0; int TT=s1+1;
  size_t n=(size_t)(TT+1)*(S+1)*(S+1);
  V=malloc(n*sizeof(float)); A=malloc(n*sizeof(short)); R=NULL; D=NULL;
  float *RR=malloc(n*sizeof(float)), *DD=malloc(n*sizeof(float));
  for(int t=TT;t>=0;t--){
    for(int lo=s0; lo<s1; lo++){ if(lo<t) continue;
      for(int hi=lo+1; hi<=s1; hi++){
        double wt=wsum(lo,hi); size_t id=IDX(t,lo,hi);
        if(wt<=0){ V[id]=0; RR[id]=0; DD[id]=0; A[id]=-1; continue; }
        double best=1e30, br=0, bd=0; int bs=-1;
        for(int s=t+1; s<=hi; s++){
          // done part: j in [lo, min(s,hi))
          int dh = s<hi? s:hi; double pd=wsum(lo,dh)/wt;
          double del = (dh>lo)? (s*wsum(lo,dh) - wjsum(lo,dh))*DT/wt : 0;
          double cost = lam + del, reads=1, delay=del;
          if(s<hi){ // running part [s? max(lo,s), hi) split by stage
            int a = lo> s? lo : s;
            for(int k=STEPS-1;k>=0;k--){ // stage k: j+.5 in (STEPS*s/(k+1), STEPS*s/k]
              int jl = first_j_above((double)STEPS*s/(k+1)); int jh = k==0? hi : first_j_above((double)STEPS*s/k);
              if(jl<a) jl=a; if(jh>hi) jh=hi; if(jh<=jl) continue;
              double p=wsum(jl,jh)/wt; if(p<=0) continue;
              size_t c=IDX(s,jl,jh); cost+=p*V[c]; reads+=p*RR[c]; delay+=p*DD[c];
            }
          }
          if(cost<best){best=cost;bs=s;br=reads;bd=delay;}
        }
        V[id]=best; A[id]=bs; RR[id]=br; DD[id]=bd;
      }
    }
  }
  size_t root=IDX(0,s0,s1);
  printf("E=%d pE=%.5f reads=%.4f delay=%.4f first=%.3f\n",E,pE,RR[root],DD[root],A[root]*DT);
  return 0;
}
