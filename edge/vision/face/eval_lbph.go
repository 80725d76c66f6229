package face

import "github.com/smartcommunity/warden/edge/vision/face/cv"

type lbphItem struct {
	person string
	grey   []byte
}

type evalLBPH struct {
	l      *cv.LBPH
	labels []string
}

func newEvalLBPH(e *Engine, items []lbphItem) (*evalLBPH, error) {
	if e.Model() != "lbph" || len(items) == 0 {
		return &evalLBPH{}, nil
	}
	l, err := cv.NewLBPH()
	if err != nil {
		return nil, err
	}
	idx := map[string]int32{}
	out := &evalLBPH{l: l}
	var imgs [][]byte
	var labs []int32
	for _, it := range items {
		if _, ok := idx[it.person]; !ok {
			idx[it.person] = int32(len(out.labels))
			out.labels = append(out.labels, it.person)
		}
		imgs = append(imgs, it.grey)
		labs = append(labs, idx[it.person])
	}
	if err := l.Train(imgs, labs, LBPHSide, LBPHSide); err != nil {
		l.Close()
		return nil, err
	}
	return out, nil
}

func (e *evalLBPH) predict(grey []byte) (string, float64) {
	if e.l == nil {
		return "", -1
	}
	lab, d, err := e.l.Predict(grey, LBPHSide, LBPHSide)
	if err != nil || lab < 0 || lab >= len(e.labels) {
		return "", -1
	}
	return e.labels[lab], 1 - d/100
}

func (e *evalLBPH) close() { e.l.Close() }
