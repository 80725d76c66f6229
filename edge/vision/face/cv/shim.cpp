#include "shim.h"
#include <cstdlib>
#include <cstring>
#include <string>
#include <exception>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/face.hpp>
#include <opencv2/dnn.hpp>

struct FCYuNet { cv::Ptr<cv::FaceDetectorYN> p; cv::Size size; };
struct FCSFace {
    cv::Ptr<cv::FaceRecognizerSF> p;
    cv::dnn::Net net; // used when scale > 0
    double scale, mean;
    bool swap;
    void feature(const cv::Mat& in, cv::Mat& f) {
        if (scale <= 0) { p->feature(in, f); return; }
        cv::Mat blob = cv::dnn::blobFromImage(in, scale, cv::Size(112, 112), cv::Scalar(mean, mean, mean), swap, false);
        net.setInput(blob);
        f = net.forward().clone();
    }
};
struct FCLBPH { cv::Ptr<cv::face::LBPHFaceRecognizer> p; bool trained; };

static void seterr(char** err, const std::string& s) {
    if (err) *err = strdup(s.c_str());
}

#define GUARD_BEGIN try {
#define GUARD_END(ret) } catch (const cv::Exception& e) { seterr(err, e.what()); return ret; } \
    catch (const std::exception& e) { seterr(err, e.what()); return ret; } \
    catch (...) { seterr(err, "unknown C++ exception"); return ret; }

FCYuNet* fc_yunet_new(const char* model, float score, float nms, char** err) {
    GUARD_BEGIN
    cv::Ptr<cv::FaceDetectorYN> p = cv::FaceDetectorYN::create(model, "", cv::Size(320, 320), score, nms, 5000);
    if (p.empty()) { seterr(err, "FaceDetectorYN::create returned null"); return nullptr; }
    FCYuNet* d = new FCYuNet{p, cv::Size(320, 320)};
    return d;
    GUARD_END(nullptr)
}

int fc_yunet_detect(FCYuNet* d, FCMat img, float* out, int max, char** err) {
    GUARD_BEGIN
    cv::Mat* m = (cv::Mat*)img;
    if (m->empty()) return 0;
    if (m->size() != d->size) { d->p->setInputSize(m->size()); d->size = m->size(); }
    cv::Mat faces;
    d->p->detect(*m, faces);
    int n = 0;
    for (int i = 0; i < faces.rows && n < max; i++, n++) {
        cv::Mat row;
        faces.row(i).convertTo(row, CV_32F);
        for (int j = 0; j < 15; j++) out[n * 15 + j] = row.at<float>(0, j);
    }
    return n;
    GUARD_END(-1)
}

void fc_yunet_free(FCYuNet* d) { delete d; }

FCSFace* fc_sface_new(const char* model, double scale, double mean, int swap_rb, char** err) {
    GUARD_BEGIN
    cv::Ptr<cv::FaceRecognizerSF> p = cv::FaceRecognizerSF::create(model, "");
    if (p.empty()) { seterr(err, "FaceRecognizerSF::create returned null"); return nullptr; }
    FCSFace* r = new FCSFace{p, cv::dnn::Net(), scale, mean, swap_rb != 0};
    try {
        if (scale > 0) r->net = cv::dnn::readNetFromONNX(model);
        // Probe once so that an unusable network fails at start, not on the first face.
        cv::Mat probe(112, 112, CV_8UC3, cv::Scalar(128, 128, 128)), f;
        r->feature(probe, f);
        if (f.empty()) { seterr(err, "model produced no feature for a 112x112 input"); delete r; return nullptr; }
    } catch (...) { delete r; throw; }
    return r;
    GUARD_END(nullptr)
}

int fc_sface_align(FCSFace* r, FCMat img, const float* row, unsigned char* crop, char** err) {
    GUARD_BEGIN
    cv::Mat box(1, 15, CV_32F);
    for (int j = 0; j < 15; j++) box.at<float>(0, j) = row[j];
    cv::Mat aligned;
    r->p->alignCrop(*(cv::Mat*)img, box, aligned);
    if (aligned.rows != 112 || aligned.cols != 112 || aligned.type() != CV_8UC3) {
        seterr(err, "alignCrop did not give a 112x112 BGR image");
        return -1;
    }
    cv::Mat c = aligned.isContinuous() ? aligned : aligned.clone();
    memcpy(crop, c.data, 112 * 112 * 3);
    return 0;
    GUARD_END(-1)
}

int fc_sface_feature(FCSFace* r, const unsigned char* crop, float* out, int max, char** err) {
    GUARD_BEGIN
    cv::Mat in(112, 112, CV_8UC3, (void*)crop);
    cv::Mat f;
    r->feature(in, f);
    cv::Mat ff;
    f.reshape(1, 1).convertTo(ff, CV_32F);
    int n = (int)ff.total();
    if (n > max) n = max;
    for (int i = 0; i < n; i++) out[i] = ff.at<float>(0, i);
    return n;
    GUARD_END(-1)
}

void fc_sface_free(FCSFace* r) { delete r; }

FCLBPH* fc_lbph_new(char** err) {
    GUARD_BEGIN
    return new FCLBPH{cv::face::LBPHFaceRecognizer::create(1, 8, 8, 8), false};
    GUARD_END(nullptr)
}

int fc_lbph_train(FCLBPH* l, const unsigned char* data, int n, int w, int h, const int* labels, char** err) {
    GUARD_BEGIN
    std::vector<cv::Mat> imgs;
    std::vector<int> labs;
    for (int i = 0; i < n; i++) {
        imgs.push_back(cv::Mat(h, w, CV_8UC1, (void*)(data + (size_t)i * w * h)).clone());
        labs.push_back(labels[i]);
    }
    l->p->train(imgs, labs);
    l->trained = n > 0;
    return 0;
    GUARD_END(-1)
}

int fc_lbph_predict(FCLBPH* l, const unsigned char* grey, int w, int h, int* label, double* dist, char** err) {
    GUARD_BEGIN
    if (!l->trained) { *label = -1; *dist = 1e9; return 0; }
    cv::Mat in(h, w, CV_8UC1, (void*)grey);
    l->p->predict(in, *label, *dist);
    return 0;
    GUARD_END(-1)
}

void fc_lbph_free(FCLBPH* l) { delete l; }

void fc_set_num_threads(int n) {
    try { cv::setNumThreads(n); } catch (...) {}
}
