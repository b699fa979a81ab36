// The digitserve page: a drawing or an uploaded photo -> POST /predict and POST /preprocess -> the
// digit, its probabilities and the 28x28 image the model read; in number mode, POST /read -> the
// number, each digit's box on the image and its 28x28 image. One input at a time: a photo clears the
// drawing, a stroke clears the photo, and the result names which one it was read from.
// Plain browser APIs, no build step.
"use strict";

(() => {
  // A pen about 1/14 of the pad high: once the digit is scaled into MNIST's 20x20 box, its strokes
  // are about 2 pixels wide, like the handwriting the model learned from.
  const BRUSH_WIDTH_FRACTION = 1 / 14;
  // The number pad is three one-digit pads side by side: room for a few digits at the same size.
  const PAD_WIDTHS = { digit: 280, number: 840 };
  const SHOWN_IMAGE_MAX_HEIGHT_PIXELS = 320;
  const SHOWN_IMAGE_MAX_SIDE_PIXELS = 1200;
  const AUTO_PREDICT_DELAY_MS = 600;
  const UNREADABLE_FILE = "That file is not an image the service can read. Choose a PNG or JPEG photo.";
  const TRY_AGAIN = "The service is busy right now. Please try again in a moment.";
  const MESSAGES = {
    no_digit_found:
      "No digit found. Draw one digit, or choose a photo showing one digit on a plain background.",
    empty_file: "That file is empty. Choose a photo of a digit.",
    undecodable_image: UNREADABLE_FILE,
    unsupported_image_type: UNREADABLE_FILE,
    invalid_request: UNREADABLE_FILE,
    payload_too_large: "That file is too large. Choose a smaller photo.",
    image_too_large: "That image has too many pixels. Choose a smaller photo.",
    queue_full: TRY_AGAIN,
    not_ready: "The service is still starting. Please try again in a moment.",
    request_timeout: TRY_AGAIN,
    too_many_digits: "That is more digits than the service reads in one number. Write a shorter number.",
  };
  // The words that depend on what is read; the number mode's own messages for the same codes.
  const MODES = {
    digit: { noun: "digit", pad: "draw one digit", photo: "one digit", messages: {} },
    number: {
      noun: "number",
      pad: "write a number in one row",
      photo: "a number",
      messages: {
        no_digit_found: "No digits found. Write the number in one row, on a plain background.",
        empty_file: "That file is empty. Choose a photo of a number.",
      },
    },
  };

  const byId = (id) => document.getElementById(id);
  const pad = byId("pad");
  const pen = pad.getContext("2d");
  const result = byId("result");
  const answer = byId("answer");
  const reading = byId("reading");
  const status = byId("status");
  const error = byId("error");
  const bars = byId("bars");
  const source = byId("source");

  let hasInk = false;
  let activePointerId = null;
  let lastPoint = null;
  let autoPredictTimer = 0;
  let latestRequest = 0;
  let inFlight = null;
  let seenImageUrl = "";
  let mode = MODES.digit;

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  // --- the drawing pad: white paper, black ink, any pointer (mouse, pen, finger) -----------------

  function clearPad() {
    pen.fillStyle = "#fff";
    pen.fillRect(0, 0, pad.width, pad.height);
    pen.strokeStyle = pen.fillStyle = "#000";
    pen.lineWidth = pad.height * BRUSH_WIDTH_FRACTION;
    pen.lineCap = pen.lineJoin = "round";
    hasInk = false;
  }

  function toPadPoint(event) {
    const box = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * pad.width) / box.width,
      y: ((event.clientY - box.top) * pad.height) / box.height,
    };
  }

  function drawDot(point) {
    pen.beginPath();
    pen.arc(point.x, point.y, pen.lineWidth / 2, 0, 2 * Math.PI);
    pen.fill();
  }

  function drawLine(from, to) {
    pen.beginPath();
    pen.moveTo(from.x, from.y);
    pen.lineTo(to.x, to.y);
    pen.stroke();
  }

  pad.addEventListener("pointerdown", (event) => {
    if (activePointerId !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    activePointerId = event.pointerId;
    try {
      pad.setPointerCapture(event.pointerId);
    } catch {
      // Capture only keeps a stroke going outside the pad; drawing works without it.
    }
    clearTimeout(autoPredictTimer);
    clearPhoto();
    lastPoint = toPadPoint(event);
    drawDot(lastPoint);
    hasInk = true;
  });

  pad.addEventListener("pointermove", (event) => {
    if (event.pointerId !== activePointerId) return;
    // Browsers deliver one move per frame; the coalesced ones keep fast pen strokes smooth.
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const move of coalesced.length ? coalesced : [event]) {
      const point = toPadPoint(move);
      drawLine(lastPoint, point);
      lastPoint = point;
    }
  });

  function endStroke(event) {
    if (event.pointerId !== activePointerId) return;
    activePointerId = null;
    autoPredictTimer = setTimeout(predictDrawing, AUTO_PREDICT_DELAY_MS);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  function predictDrawing() {
    clearTimeout(autoPredictTimer);
    if (!hasInk) {
      cancelRequest();
      showError(`Draw a ${mode.noun} first, or choose a photo.`);
      return;
    }
    submit(new Promise((resolve) => pad.toBlob(resolve, "image/png")), "drawing.png", "your drawing");
  }

  byId("predict").addEventListener("click", predictDrawing);
  byId("clear").addEventListener("click", () => {
    clearTimeout(autoPredictTimer);
    cancelRequest();
    clearPad();
    showStatus(`Draw a ${mode.noun} or choose a photo to start.`);
  });

  // --- the mode: one digit (POST /predict) or a number (POST /read, on a wide pad) ------------------

  for (const radio of document.querySelectorAll("[name=mode]")) {
    radio.addEventListener("change", () => {
      mode = MODES[radio.value];
      document.body.classList.toggle("number-mode", mode === MODES.number);
      clearTimeout(autoPredictTimer);
      cancelRequest();
      pad.width = PAD_WIDTHS[radio.value]; // a new size empties the canvas and resets the pen
      clearPad();
      pad.setAttribute("aria-label", `Drawing area: ${mode.pad} with a mouse, pen or finger`);
      byId("file-label").textContent = `Choose a photo of ${mode.photo}`;
      clearPhoto();
      showStatus(`Draw a ${mode.noun} or choose a photo to start.`);
    });
  }

  // --- photos: the file picker and drag and drop ----------------------------------------------------

  const fileInput = byId("file");
  const photo = byId("photo");
  let photoUrl = "";

  // The preview shows once the browser has drawn the file: a file it cannot draw (not an image, or
  // TIFF) shows no broken-image icon, only the service's answer.
  photo.addEventListener("load", () => (photo.hidden = false));

  function clearPhoto() {
    fileInput.value = "";
    photo.hidden = true;
    photo.removeAttribute("src");
    URL.revokeObjectURL(photoUrl);
  }

  function submitPhoto(file) {
    clearTimeout(autoPredictTimer);
    clearPad();
    photo.hidden = true;
    URL.revokeObjectURL(photoUrl);
    photo.src = photoUrl = URL.createObjectURL(file);
    submit(file, file.name, file.name);
  }

  fileInput.addEventListener("change", () => {
    if (fileInput.files[0]) submitPhoto(fileInput.files[0]);
  });

  const dropZone = byId("drop-zone");
  // A file dropped outside the zone must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => event.preventDefault());
  }
  dropZone.addEventListener("dragover", () => dropZone.classList.add("dragging"));
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    dropZone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (!file) return;
    fileInput.files = event.dataTransfer.files; // the picker names the photo being read
    submitPhoto(file);
  });

  // --- talking to the service -------------------------------------------------------------------------

  function cancelRequest() {
    latestRequest += 1;
    if (inFlight) inFlight.abort();
    inFlight = null;
    result.setAttribute("aria-busy", "false");
  }

  async function postImage(path, blob, name, signal) {
    const form = new FormData();
    form.append("file", blob, name);
    const response = await fetch(path, { method: "POST", body: form, signal });
    if (response.ok) return response;
    let body = {};
    try {
      body = await response.json();
    } catch {
      // Not the service's JSON (a proxy's error page): the status line is all there is.
    }
    const known = mode.messages[body.code] || MESSAGES[body.code];
    const message = known || body.detail || `The service answered ${response.status}.`;
    throw new ApiError(message, body.code || String(response.status));
  }

  // `image` is a Blob or File, or a promise of one (the pad's PNG is encoded asynchronously); the
  // page is busy from the call on, and only the latest request's answer is ever shown, with
  // `origin` (what it was read from).
  async function submit(image, name, origin) {
    cancelRequest();
    const request = latestRequest;
    inFlight = new AbortController();
    const { signal } = inFlight;
    result.setAttribute("aria-busy", "true");
    // A new answer replaces the previous one in place; dimmed (CSS) while it is on its way.
    if (answer.hidden && reading.hidden) showStatus(`Reading the ${mode.noun}…`);
    try {
      const blob = await image;
      if (request !== latestRequest) return;
      if (mode === MODES.number) {
        const response = await postImage("/read?include_model_view=true", blob, name, signal);
        // A format the browser cannot draw (TIFF) is still read: the answer comes without the image.
        const picture = createImageBitmap(blob).catch(() => null);
        const [number, bitmap] = await Promise.all([response.json(), picture]);
        if (request === latestRequest) showNumber(number, bitmap, origin);
        return;
      }
      const [prediction, preprocessed] = await Promise.all([
        postImage("/predict", blob, name, signal).then((response) => response.json()),
        postImage("/preprocess", blob, name, signal).then((response) => response.blob()),
      ]);
      if (request === latestRequest) showPrediction(prediction, preprocessed, origin);
    } catch (failure) {
      if (request !== latestRequest) return;
      if (failure instanceof ApiError) showError(failure.message);
      else showError("Could not reach the service. Check your connection and try again.");
    } finally {
      if (request === latestRequest) {
        inFlight = null;
        result.setAttribute("aria-busy", "false");
      }
    }
  }

  // --- showing the answer --------------------------------------------------------------------------------

  const percent = (probability) => `${(probability * 100).toFixed(1)} %`;

  // Why the service is not sure, in words: the API's `reason` codes.
  const UNSURE_WHY = {
    low_confidence: "The writing could be read more than one way; a person should check it.",
    not_a_digit: "This does not look like a digit the model knows (a letter, a symbol or a scribble?).",
    several_digits:
      "The image holds several digits side by side; this reads one digit at a time. Draw or upload one " +
      "digit, or choose “A number” above.",
  };

  // "4 or 9": the likeliest digits that hold some belief, most probable first.
  function likelyDigits(alternatives) {
    const likely = alternatives.filter((alternative) => alternative.probability >= 0.05);
    const digits = (likely.length > 1 ? likely : alternatives.slice(0, 2)).map((a) => a.digit);
    return `${digits.slice(0, -1).join(", ")} or ${digits[digits.length - 1]}`;
  }

  function unsureTitle(prediction) {
    if (prediction.reason === "several_digits") return "Not sure — several digits.";
    if (prediction.reason === "not_a_digit") return "Not sure — is this a digit?";
    return `Not sure — ${likelyDigits(prediction.alternatives)}?`;
  }

  function buildBars() {
    for (let digit = 0; digit < 10; digit += 1) {
      const item = document.createElement("li");
      item.innerHTML =
        `<span class="bar-digit">${digit}</span>` +
        '<span class="bar-track" aria-hidden="true"><span class="bar-fill"></span></span>' +
        '<span class="bar-value">0.0 %</span>';
      bars.append(item);
    }
  }

  function showPrediction(prediction, preprocessed, origin) {
    byId("digit").textContent = String(prediction.digit);
    byId("confidence").textContent = `${percent(prediction.confidence)} sure`;
    const unsure = byId("unsure");
    unsure.hidden = !prediction.unsure;
    answer.classList.toggle("is-unsure", prediction.unsure);
    if (prediction.unsure) {
      byId("unsure-title").textContent = unsureTitle(prediction);
      byId("unsure-why").textContent = UNSURE_WHY[prediction.reason] || "";
    }
    prediction.probabilities.forEach((probability, digit) => {
      const item = bars.children[digit];
      item.classList.toggle("top", digit === prediction.digit);
      item.querySelector(".bar-fill").style.width = `${Math.max(probability * 100, 0.5)}%`;
      item.querySelector(".bar-value").textContent = percent(probability);
    });
    if (seenImageUrl) URL.revokeObjectURL(seenImageUrl);
    seenImageUrl = URL.createObjectURL(preprocessed);
    byId("seen").src = seenImageUrl;
    byId("polarity").textContent = prediction.inverted
      ? "Dark ink on a light background: the colours were inverted (white ink on black, like MNIST)."
      : "Light ink on a dark background: the colours were kept as they are.";
    byId("model-version").textContent = `Model version ${prediction.model_version}.`;
    showAnswer(answer, origin);
  }

  // 1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st.
  const ordinal = (position) =>
    `${position}${(Math.floor(position / 10) % 10 !== 1 && ["th", "st", "nd", "rd"][position % 10]) || "th"}`;

  // Why a number is not sure, in words, naming the digits a person should look at.
  function numberUnsure(number) {
    const doubtful = number.digits.flatMap((digit, index) =>
      digit.unsure ? [`the ${ordinal(index + 1)} digit (${likelyDigits(digit.alternatives)}?)`] : [],
    );
    const check = doubtful.join(" and ");
    if (number.reason === "doubtful_segmentation") {
      return [
        "Not sure — check how the digits were cut.",
        "The digits may touch or be broken, so the boxes could be wrong: a person should check them." +
          (check ? ` Check ${check} too.` : ""),
      ];
    }
    return [
      `Not sure — ${doubtful.length > 1 ? "some digits" : "a digit"} could be read more than one way.`,
      `A person should check ${check || "the digits"}.`,
    ];
  }

  // The image, scaled down to at most SHOWN_IMAGE_MAX_SIDE_PIXELS, with a box and label per digit;
  // the boxes are placed in percent of the image, so they follow it as CSS scales it.
  function showMarkedImage(number, picture) {
    const marked = byId("marked");
    const canvas = byId("read-image");
    marked.hidden = !picture;
    if (!picture) return;
    const { width, height } = picture;
    const scale = Math.min(1, SHOWN_IMAGE_MAX_SIDE_PIXELS / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(picture, 0, 0, canvas.width, canvas.height);
    picture.close();
    marked.style.width = `min(100%, ${(SHOWN_IMAGE_MAX_HEIGHT_PIXELS * width) / height}px)`;
    marked.replaceChildren(canvas);
    for (const digit of number.digits) {
      const box = document.createElement("span");
      const label = document.createElement("span");
      box.className = digit.unsure ? "box is-unsure" : "box";
      box.style.left = `${(digit.box.x / width) * 100}%`;
      box.style.top = `${(digit.box.y / height) * 100}%`;
      box.style.width = `${(digit.box.width / width) * 100}%`;
      box.style.height = `${(digit.box.height / height) * 100}%`;
      label.className = "box-label";
      label.textContent = `${digit.digit} ${percent(digit.confidence)}`;
      box.append(label);
      marked.append(box);
    }
  }

  function showNumber(number, picture, origin) {
    byId("number").textContent = number.text;
    const unsure = byId("number-unsure");
    unsure.hidden = !number.unsure;
    reading.classList.toggle("is-unsure", number.unsure);
    if (number.unsure) {
      [byId("number-unsure-title").textContent, byId("number-unsure-why").textContent] = numberUnsure(number);
    }
    showMarkedImage(number, picture);
    byId("views").replaceChildren(
      ...number.digits.map((digit, index) => {
        const item = document.createElement("li");
        const view = new Image(56, 56);
        view.src = `data:image/png;base64,${digit.model_view}`;
        view.alt = `The ${ordinal(index + 1)} digit as the model read it`;
        const caption = document.createElement("span");
        caption.textContent = `${digit.digit} ${percent(digit.confidence)}`;
        item.classList.toggle("is-unsure", digit.unsure);
        item.append(view, caption);
        return item;
      }),
    );
    byId("model-version").textContent = `Model version ${number.model_version}.`;
    showAnswer(reading, origin);
  }

  // Shows one of the result's parts (an answer, a number, an error or a status) and hides the others.
  function showOnly(part) {
    for (const other of [status, error, answer, reading, source]) other.hidden = other !== part;
  }

  function showAnswer(part, origin) {
    showOnly(part);
    source.textContent = `Read from ${origin}`;
    source.hidden = false;
  }

  function showError(message) {
    error.textContent = message;
    showOnly(error);
  }

  function showStatus(message) {
    status.textContent = message;
    showOnly(status);
  }

  clearPad();
  buildBars();
})();
