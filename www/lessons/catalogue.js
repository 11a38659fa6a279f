// @ts-check
// The lessons in their order. Each lives in catalogue/<id>.js (its claim,
// prediction, preset and check) and is loaded on its own, so a lesson page
// downloads one lesson's text rather than all of them (README, "Bundle").

/** @typedef {import("./checks.js").Lesson} Lesson */

/** Every lesson's id (= its page, <id>.html, and its module, catalogue/<id>.js), in reading order. */
export const LESSON_IDS = [
  "sgd-vs-sam",
  "label-noise",
  "batch-size",
  "edge-of-stability",
  "rescaling",
  "adam-vs-sgd",
  "averaging",
  "regularisers",
  "spurious",
  "flatness-predicts",
];

/**
 * The lesson named `id` (one of LESSON_IDS).
 * @param {string} id
 * @returns {Promise<Lesson>}
 */
export async function loadLesson(id) {
  return (await import(`./catalogue/${id}.js`)).default;
}
