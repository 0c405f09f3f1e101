/** `npm start`: the blog example on file:data.db (PORT overrides 7654). */
import { serve } from "citadel/adapter/node";
import { blog } from "./config.js";

serve(blog);
